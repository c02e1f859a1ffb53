//! The request headers as the upstream will get them: the client's, minus what the machine strips,
//! plus what it writes. Kept so that an escalated call carries what the first tier got without
//! reading the host's map again.

/// Header names are compared without case; a name the host holds several times answers with its
/// first value (as Envoy's lookup does), and a write replaces every value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HeaderList(Vec<(String, String)>);

impl HeaderList {
    pub fn new(pairs: Vec<(String, String)>) -> HeaderList {
        HeaderList(pairs)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(have, _)| have.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub fn set(&mut self, name: &str, value: &str) {
        self.remove(name);
        self.0.push((name.to_string(), value.to_string()));
    }

    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(have, _)| !have.eq_ignore_ascii_case(name));
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::HeaderList;

    #[test]
    fn lookups_ignore_case_and_writes_replace_every_value() {
        let mut list = HeaderList::new(vec![
            ("X-Tier".into(), "a".into()),
            ("x-tier".into(), "b".into()),
            ("other".into(), "c".into()),
        ]);
        assert_eq!(list.get("x-TIER"), Some("a"));
        list.set("x-tier", "z");
        assert_eq!(list.get("x-tier"), Some("z"));
        assert_eq!(list.pairs().len(), 2);
        list.remove("OTHER");
        assert_eq!(list.get("other"), None);
    }
}
