use std::borrow::Cow;

use sha2::{Digest, Sha256};

use super::*;
use crate::format::{Message, Role};

fn shipped() -> &'static Embedder {
    match Embedder::shipped() {
        Ok(embedder) => embedder,
        Err(error) => panic!("the shipped table does not load: {error}"),
    }
}

fn cosine(a: &[f32; DIMS], b: &[f32; DIMS]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn the_shipped_table_is_the_pinned_one() {
    let digest = Sha256::digest(TABLE_BYTES);
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    assert_eq!(format!("sha256:{hex}"), TABLE_SHA256);
    assert!(Embedder::shipped().is_ok());
}

#[test]
fn a_bad_table_is_refused_with_the_reason() {
    let vocab = WordPiece::shipped().len();
    let mut zero_scale = TABLE_BYTES.to_vec();
    zero_scale[16..20].copy_from_slice(&0.0f32.to_le_bytes());
    let cases: [(&[u8], &str); 5] = [
        (b"TRGEMB0", "shorter"),
        (b"NOTATABLE0000000", "not a triage embedding table"),
        (b"TRGEMB01", "not a triage embedding table"),
        (&TABLE_BYTES[..TABLE_BYTES.len() - 1], "bytes, expected"),
        (&zero_scale, "scale 0 is not a positive number"),
    ];
    for (bytes, reason) in cases {
        match Table::parse(bytes, vocab) {
            Ok(_) => panic!("accepted {reason}"),
            Err(error) => assert!(error.contains(reason), "{error}"),
        }
    }
    match Table::parse(TABLE_BYTES, vocab + 1) {
        Ok(_) => panic!("accepted a table for another vocabulary"),
        Err(error) => assert!(error.contains("rows"), "{error}"),
    }
}

#[test]
fn embeddings_are_unit_length_or_zero() {
    let embedder = shipped();
    let vector = embedder.embed_text("Translate this sentence into French.");
    let norm: f32 = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-5, "{norm}");
    // Nothing with a vector: no tokens at all, or only special tokens (their rows are zero).
    assert_eq!(embedder.embed_text(""), [0.0; DIMS]);
    assert_eq!(embedder.embed_text("[CLS] [SEP]"), [0.0; DIMS]);
}

#[test]
fn similar_tasks_are_closer_than_different_ones() {
    // The table carries meaning: two translation requests, two proofs, a classification. If the
    // tokenizer's ids or the table's rows were off, the neighbours would be arbitrary.
    let embedder = shipped();
    let translate =
        embedder.embed_text("Translate the following sentence into French: I love cats.");
    let translate2 = embedder.embed_text("Please translate this paragraph to German.");
    let prove = embedder.embed_text("Prove that the square root of two is irrational.");
    let prove2 =
        embedder.embed_text("Show a rigorous proof that there are infinitely many primes.");
    let sentiment = embedder.embed_text("Is this review positive or negative? The food was cold.");
    assert!(cosine(&translate, &translate2) > cosine(&translate, &prove));
    assert!(cosine(&translate, &translate2) > cosine(&translate, &sentiment));
    assert!(cosine(&prove, &prove2) > cosine(&prove, &translate2));
    assert!(cosine(&prove, &prove2) > cosine(&prove, &sentiment));
}

fn request<'a>(messages: &[(Role, &[&'a str])]) -> ParsedRequest<'a> {
    ParsedRequest {
        messages: messages
            .iter()
            .map(|(role, texts)| Message {
                role: *role,
                texts: texts.iter().map(|text| Cow::Borrowed(*text)).collect(),
            })
            .collect(),
        ..ParsedRequest::default()
    }
}

#[test]
fn a_request_is_embedded_by_its_last_user_message() {
    let embedder = shipped();
    let question = "Translate the following sentence into French: I love cats.";
    let alone = request(&[(Role::User, &[question])]);
    let after_history = request(&[
        (
            Role::User,
            &["Prove that the square root of two is irrational."],
        ),
        (Role::Assistant, &["Suppose it were rational..."]),
        (Role::User, &[question]),
    ]);
    assert_eq!(
        embedder.embed_request(&alone),
        embedder.embed_text(question)
    );
    assert_eq!(
        embedder.embed_request(&after_history),
        embedder.embed_text(question)
    );
    assert_eq!(embedder.embed_request(&request(&[])), [0.0; DIMS]);
}

#[test]
fn the_tail_is_cut_at_a_word_and_spans_parts() {
    let tails = |messages: &[(Role, &[&'static str])], budget| -> Vec<&'static str> {
        let request = request(messages);
        tail(&request, budget)
            .map(|text| text.to_owned().leak() as &str)
            .collect()
    };
    let parts: &[&str] = &["first part", "second part here"];
    assert_eq!(
        tails(&[(Role::User, parts)], 100),
        ["first part", "second part here"]
    );
    // 16 bytes of the last part, then 2 of the first: cut inside "part", so it starts after it.
    assert_eq!(tails(&[(Role::User, parts)], 18), ["", "second part here"]);
    // Cut at a word's start: the word stays.
    assert_eq!(
        tails(&[(Role::User, parts)], 20),
        ["part", "second part here"]
    );
    // Cut inside a word: from its end.
    assert_eq!(tails(&[(Role::User, &["alpha beta gamma"])], 8), [" gamma"]);
    assert_eq!(tails(&[(Role::User, &["alpha beta gamma"])], 6), [" gamma"]);
    assert_eq!(
        tails(&[(Role::User, &["alpha beta gamma"])], 0),
        Vec::<&str>::new()
    );
    // Ideographs are words of their own: from the next char boundary.
    assert_eq!(tails(&[(Role::User, &["日本語の文章"])], 7), ["文章"]);
    assert_eq!(tails(&[(Role::User, &["日本語の文章"])], 9), ["の文章"]);
}

#[test]
fn a_long_message_costs_no_more_than_its_tail() {
    let embedder = shipped();
    let filler = "lorem ipsum dolor sit amet ".repeat(2000);
    let question = " Is this review positive or negative? The food was cold.";
    let long = format!("{filler}{question}");
    // What the tail keeps: from the first space at or after the cut (the cut falls inside a word).
    let cut = long.len() - EMBED_BYTES;
    assert_ne!(long.as_bytes()[cut - 1], b' ');
    let tail_only = &long[cut + long[cut..].find(' ').unwrap()..];
    let long_request = request(&[(Role::User, &[long.as_str()])]);
    let tail_request = request(&[(Role::User, &[tail_only])]);
    assert_eq!(
        embedder.embed_request(&long_request),
        embedder.embed_request(&tail_request)
    );
    assert_ne!(
        embedder.embed_request(&long_request),
        embedder.embed_text(&long)
    );
}

#[test]
fn the_representations_name_says_how_much_it_reads() {
    assert!(
        TABLE_NAME.ends_with(&format!("/tail-{EMBED_BYTES}")),
        "{TABLE_NAME} must end with /tail-{EMBED_BYTES}: a model trained on another tail is refused by it"
    );
}
