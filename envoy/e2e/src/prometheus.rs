//! Envoy's `/stats/prometheus` text, parsed: every sample with its labels.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

#[derive(Debug, Clone, Default)]
pub struct Scrape {
    pub samples: Vec<Sample>,
}

impl Scrape {
    /// Parses the text exposition format Envoy writes (comments skipped; label values without
    /// escaped quotes, which Envoy's own names never have).
    pub fn parse(text: &str) -> Scrape {
        let samples = text
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .filter_map(parse_sample)
            .collect();
        Scrape { samples }
    }

    /// The sum over every series of `name` whose labels include all of `labels`.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).map(|sample| sample.value).sum()
    }

    pub fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |sample| {
            sample.name == name
                && labels
                    .iter()
                    .all(|(key, value)| sample.labels.get(*key).map(String::as_str) == Some(*value))
        })
    }

    /// Distinct metric names, e.g. to check a dashboard's queries against.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.samples.iter().map(|s| s.name.clone()).collect();
        names.sort();
        names.dedup();
        names
    }
}

fn parse_sample(line: &str) -> Option<Sample> {
    let (series, value) = line.rsplit_once(' ')?;
    let value: f64 = value.parse().ok()?;
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}')?)?),
        None => (series, BTreeMap::new()),
    };
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

fn parse_labels(text: &str) -> Option<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"")?;
        let (value, after) = after.split_once('"')?;
        labels.insert(key.to_owned(), value.to_owned());
        rest = after.strip_prefix(',').unwrap_or(after);
    }
    Some(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_samples_with_and_without_labels() {
        let scrape = Scrape::parse(
            "# TYPE triage_requests counter\n\
             triage_requests{mode=\"enforce\",tier=\"small\",cause=\"scored\"} 3\n\
             triage_requests{mode=\"shadow\",tier=\"small\",cause=\"rule\"} 2\n\
             envoy_server_live 1\n\
             triage_decision_us_bucket{le=\"+Inf\"} 5\n",
        );
        assert_eq!(scrape.sum("triage_requests", &[("tier", "small")]), 5.0);
        assert_eq!(scrape.sum("triage_requests", &[("mode", "shadow")]), 2.0);
        assert_eq!(scrape.sum("envoy_server_live", &[]), 1.0);
        assert_eq!(
            scrape.sum("triage_decision_us_bucket", &[("le", "+Inf")]),
            5.0
        );
        assert_eq!(scrape.names().len(), 3);
    }
}
