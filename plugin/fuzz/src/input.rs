//! Structured inputs: the fuzzer's bytes read front to back as a script of small choices, and the
//! writer the seed generator builds the same scripts with. Every input decodes to something: a read
//! past the end reads zeros (or no bytes), so libFuzzer's mutations never fall out of the format,
//! and a truncated input is a shorter script.

use std::borrow::Cow;

/// A structured input: read from the fuzzer's bytes, and written in the same format by the seed
/// generator.
pub trait Script: Sized {
    fn read(input: &mut InputReader) -> Self;
    fn write(&self, out: &mut InputWriter);
}

/// Reads choices off the front of the fuzzer's bytes.
pub struct InputReader<'a> {
    rest: &'a [u8],
}

impl<'a> InputReader<'a> {
    pub fn new(input: &'a [u8]) -> InputReader<'a> {
        InputReader { rest: input }
    }

    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    pub fn byte(&mut self) -> u8 {
        let Some((&first, rest)) = self.rest.split_first() else {
            return 0;
        };
        self.rest = rest;
        first
    }

    pub fn flag(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    pub fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | (u64::from(self.u32()) << 32)
    }

    /// Bytes given with their length in front (two bytes, little-endian), cut at the input's end: a
    /// mutated length takes what is left rather than making the rest unreadable.
    pub fn bytes(&mut self) -> Vec<u8> {
        let length = usize::from(self.u16()).min(self.rest.len());
        let (taken, rest) = self.rest.split_at(length);
        self.rest = rest;
        taken.to_vec()
    }

    /// One of a menu of texts, any bytes, or nothing (see [`Text`]).
    pub fn text(&mut self, menu: &[&str]) -> Text {
        match self.byte() {
            Text::ABSENT => Text::Absent,
            Text::RAW => Text::Raw(self.bytes()),
            index => Text::Menu(usize::from(index) % menu.len()),
        }
    }
}

/// Writes what [`InputReader`] reads, in the same order: the seed generator's side of the format.
#[derive(Default)]
pub struct InputWriter {
    bytes: Vec<u8>,
}

impl InputWriter {
    pub fn byte(&mut self, byte: u8) {
        self.bytes.push(byte);
    }

    pub fn flag(&mut self, flag: bool) {
        self.byte(u8::from(flag));
    }

    pub fn u16(&mut self, value: u16) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }

    pub fn u32(&mut self, value: u32) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }

    pub fn u64(&mut self, value: u64) {
        self.u32(value as u32);
        self.u32((value >> 32) as u32);
    }

    pub fn bytes(&mut self, bytes: &[u8]) {
        let length = u16::try_from(bytes.len())
            .unwrap_or_else(|_| panic!("{} bytes do not fit a two-byte length", bytes.len()));
        self.u16(length);
        self.bytes.extend_from_slice(bytes);
    }

    pub fn text(&mut self, text: &Text) {
        match text {
            Text::Absent => self.byte(Text::ABSENT),
            Text::Raw(bytes) => {
                self.byte(Text::RAW);
                self.bytes(bytes);
            }
            Text::Menu(index) => self.byte(
                u8::try_from(*index)
                    .ok()
                    .filter(|byte| *byte < Text::ABSENT)
                    .unwrap_or_else(|| panic!("menu index {index} does not fit below the markers")),
            ),
        }
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// A header value, path or status: mostly one of a menu of meaningful texts (so the fuzzer reaches
/// the paths they open), sometimes any bytes a client or upstream could send, or none at all.
#[derive(Clone, Debug, PartialEq)]
pub enum Text {
    Menu(usize),
    Raw(Vec<u8>),
    Absent,
}

impl Text {
    const ABSENT: u8 = 0xfe;
    const RAW: u8 = 0xff;

    /// The menu entry `entry` names; panics when it is not on the menu (a seed generator's mistake).
    pub fn of(menu: &[&str], entry: &str) -> Text {
        let index = menu
            .iter()
            .position(|have| *have == entry)
            .unwrap_or_else(|| panic!("{entry:?} is not on the menu {menu:?}"));
        Text::Menu(index)
    }

    pub fn resolve<'m>(&self, menu: &[&'m str]) -> Option<Cow<'m, str>> {
        match self {
            Text::Menu(index) => Some(Cow::Borrowed(menu[index % menu.len()])),
            Text::Raw(bytes) => Some(Cow::Owned(String::from_utf8_lossy(bytes).into_owned())),
            Text::Absent => None,
        }
    }
}
