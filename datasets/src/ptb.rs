//! Word-level language-model corpora: Penn Treebank (Mikolov split) and
//! WikiText-2, with the same loader.
//!
//! * Each line is split on whitespace and followed by an `<eos>` token
//!   (empty lines give a lone `<eos>`), as in the AWD-LSTM / DARTS recipes.
//! * The vocabulary is built from the training split, in order of first
//!   appearance. Words of valid/test that are not in it map to `<unk>` when
//!   the vocabulary has one; otherwise they are an error.
//! * [`batchify`] lays the token stream out as `batch` parallel columns;
//!   [`BpttWindows`] cuts it into (input, target) windows along time.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ndarray::{Array2, ArrayView2, s};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};

use crate::error::{DatasetError, Result};

/// End-of-sentence token appended to every line.
pub const EOS: &str = "<eos>";
/// Unknown-word token (already present in PTB and WikiText-2 texts).
pub const UNK: &str = "<unk>";

/// A word ↔ id mapping.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vocab {
    words: Vec<String>,
    #[serde(skip)]
    index: HashMap<String, u32>,
}

impl Vocab {
    /// An empty vocabulary.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `word` if absent; returns its id.
    ///
    /// ```
    /// let mut v = datasets::Vocab::new();
    /// assert_eq!(v.add("a"), 0);
    /// assert_eq!(v.add("b"), 1);
    /// assert_eq!(v.add("a"), 0);
    /// assert_eq!(v.word(1), Some("b"));
    /// ```
    pub fn add(&mut self, word: &str) -> u32 {
        if let Some(&id) = self.index.get(word) {
            return id;
        }
        let id = self.words.len() as u32;
        self.words.push(word.to_string());
        self.index.insert(word.to_string(), id);
        id
    }

    /// Id of `word`, if known.
    pub fn id(&self, word: &str) -> Option<u32> {
        self.index.get(word).copied()
    }

    /// Word of `id`, if in range.
    pub fn word(&self, id: u32) -> Option<&str> {
        self.words.get(id as usize).map(String::as_str)
    }

    /// Number of words.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// All words, by id.
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// Rebuilds the lookup index (needed after deserialising).
    pub fn rebuild_index(&mut self) {
        self.index = self
            .words
            .iter()
            .enumerate()
            .map(|(i, w)| (w.clone(), i as u32))
            .collect();
    }
}

/// A tokenised corpus: vocabulary and the id streams of the three splits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corpus {
    /// Vocabulary (built from the training split).
    pub vocab: Vocab,
    /// Training ids, `<eos>` after every line.
    pub train: Vec<u32>,
    /// Validation ids.
    pub valid: Vec<u32>,
    /// Test ids.
    pub test: Vec<u32>,
}

impl Corpus {
    /// Loads Penn Treebank from `data_dir/ptb/ptb.{train,valid,test}.txt`.
    ///
    /// ```no_run
    /// let corpus = datasets::Corpus::ptb(&datasets::data_dir(None))?;
    /// assert_eq!(corpus.vocab.len(), 10_000);
    /// assert_eq!(corpus.train.len(), 929_589);
    /// # Ok::<(), datasets::DatasetError>(())
    /// ```
    pub fn ptb(data_dir: &Path) -> Result<Corpus> {
        let d = data_dir.join("ptb");
        Self::from_files(
            &d.join("ptb.train.txt"),
            &d.join("ptb.valid.txt"),
            &d.join("ptb.test.txt"),
        )
    }

    /// Loads WikiText-2 from `data_dir/wikitext-2/wiki.{train,valid,test}.tokens`.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let wt = dir.path().join("wikitext-2");
    /// std::fs::create_dir(&wt).unwrap();
    /// for split in ["train", "valid", "test"] {
    ///     std::fs::write(wt.join(format!("wiki.{split}.tokens")), " = Title = \n\n a b <unk> \n").unwrap();
    /// }
    /// let c = datasets::Corpus::wikitext2(dir.path()).unwrap();
    /// assert_eq!(c.train.len(), 4 + 1 + 4); // "= Title = <eos>", "<eos>", "a b <unk> <eos>"
    /// ```
    pub fn wikitext2(data_dir: &Path) -> Result<Corpus> {
        let d = data_dir.join("wikitext-2");
        Self::from_files(
            &d.join("wiki.train.tokens"),
            &d.join("wiki.valid.tokens"),
            &d.join("wiki.test.tokens"),
        )
    }

    /// Loads a corpus from three text files.
    pub fn from_files(train: &Path, valid: &Path, test: &Path) -> Result<Corpus> {
        let read = |p: &Path| -> Result<String> {
            std::fs::read_to_string(p).map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    DatasetError::MissingFile {
                        path: p.to_path_buf(),
                        fix: format!(
                            "put the corpus files in {} (PTB: ptb.train.txt, ptb.valid.txt, ptb.test.txt from Mikolov's simple-examples; WikiText-2: wiki.*.tokens)",
                            p.parent().map(|d| d.display().to_string()).unwrap_or_default()
                        ),
                    }
                } else {
                    DatasetError::io("read", p, e)
                }
            })
        };
        let (tr, va, te) = (read(train)?, read(valid)?, read(test)?);
        Self::build(&tr, &va, &te, [train.into(), valid.into(), test.into()])
    }

    /// Builds a corpus from in-memory texts.
    ///
    /// ```
    /// let c = datasets::Corpus::from_texts(" a b \n b c \n", " c a \n", " b \n").unwrap();
    /// assert_eq!(c.vocab.words(), &["a", "b", "<eos>", "c"]);
    /// assert_eq!(c.train, vec![0, 1, 2, 1, 3, 2]);
    /// assert_eq!(c.valid, vec![3, 0, 2]);
    /// ```
    pub fn from_texts(train: &str, valid: &str, test: &str) -> Result<Corpus> {
        Self::build(
            train,
            valid,
            test,
            [
                "<train text>".into(),
                "<valid text>".into(),
                "<test text>".into(),
            ],
        )
    }

    fn build(train: &str, valid: &str, test: &str, names: [PathBuf; 3]) -> Result<Corpus> {
        let mut vocab = Vocab::new();
        let mut train_ids = Vec::with_capacity(train.len() / 5);
        for line in train.lines() {
            for w in line.split_whitespace() {
                train_ids.push(vocab.add(w));
            }
            train_ids.push(vocab.add(EOS));
        }
        vocab.add(EOS);
        let [_, vname, tname] = names;
        let valid_ids = encode(&vocab, valid, &vname)?;
        let test_ids = encode(&vocab, test, &tname)?;
        Ok(Corpus {
            vocab,
            train: train_ids,
            valid: valid_ids,
            test: test_ids,
        })
    }

    /// Tokenises more text with this corpus's vocabulary (`<eos>` per line).
    ///
    /// ```
    /// let c = datasets::Corpus::from_texts("a b\n", "", "").unwrap();
    /// assert_eq!(c.encode("b a\n").unwrap(), vec![1, 0, 2]);
    /// ```
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        encode(&self.vocab, text, Path::new("<text>"))
    }
}

fn encode(vocab: &Vocab, text: &str, name: &Path) -> Result<Vec<u32>> {
    let unk = vocab.id(UNK);
    let eos = vocab.id(EOS).unwrap_or(0);
    let mut ids = Vec::with_capacity(text.len() / 5);
    for (ln, line) in text.lines().enumerate() {
        for w in line.split_whitespace() {
            match vocab.id(w).or(unk) {
                Some(id) => ids.push(id),
                None => {
                    return Err(DatasetError::OutOfVocabulary {
                        path: name.to_path_buf(),
                        line: ln + 1,
                        word: w.to_string(),
                    });
                }
            }
        }
        ids.push(eos);
    }
    Ok(ids)
}

/// Lays out `ids` as `batch` stream columns: the result has shape
/// `(steps, batch)` with `steps = ids.len() / batch` and column `j` holding
/// `ids[j*steps .. (j+1)*steps]`; the remainder is dropped.
///
/// Errors if `batch` is 0 or there are fewer than `batch` tokens.
///
/// ```
/// let a = datasets::batchify(&[0, 1, 2, 3, 4, 5, 6], 2).unwrap();
/// assert_eq!(a, ndarray::array![[0, 3], [1, 4], [2, 5]]);
/// ```
pub fn batchify(ids: &[u32], batch: usize) -> Result<Array2<u32>> {
    if batch == 0 || ids.len() < batch {
        return Err(DatasetError::invalid(
            format!("cannot batchify {} tokens into {batch} columns", ids.len()),
            "use a batch size between 1 and the number of tokens",
        ));
    }
    let steps = ids.len() / batch;
    Ok(Array2::from_shape_fn((steps, batch), |(i, j)| {
        ids[j * steps + i]
    }))
}

/// How long BPTT windows are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeqLen {
    /// Every window has this length (the last one may be shorter).
    Fixed(usize),
    /// AWD-LSTM variable length around `bptt`: with probability 0.95 the
    /// base is `bptt`, else `bptt / 2`; then `seq_len ~ Normal(base, 5)`,
    /// truncated to an integer and clipped to `[5, base + 20]`.
    Random {
        /// The nominal BPTT length (35 for PTB).
        bptt: usize,
    },
}

impl SeqLen {
    fn nominal(self) -> usize {
        match self {
            SeqLen::Fixed(n) | SeqLen::Random { bptt: n } => n,
        }
    }
}

/// One BPTT window: `input` rows `start..start+seq_len` of the batchified
/// data, `target` the same shifted by one step.
#[derive(Debug, Clone, PartialEq)]
pub struct BpttWindow<'a> {
    /// First time step of the window.
    pub start: usize,
    /// Number of time steps.
    pub seq_len: usize,
    /// Inputs, shape `(seq_len, batch)`.
    pub input: ArrayView2<'a, u32>,
    /// Next-token targets, shape `(seq_len, batch)`.
    pub target: ArrayView2<'a, u32>,
    /// `seq_len / bptt`: AWD-LSTM multiplies the learning rate by this.
    pub lr_scale: f32,
}

/// Iterator over the BPTT windows of a batchified stream.
#[derive(Debug, Clone)]
pub struct BpttWindows<'a> {
    data: ArrayView2<'a, u32>,
    policy: SeqLen,
    rng: Pcg64Mcg,
    pos: usize,
}

impl<'a> BpttWindows<'a> {
    /// Windows over `data` (from [`batchify`]); `seed` drives the random
    /// lengths of [`SeqLen::Random`]. Windows cover every step with a target:
    /// the last may be shorter.
    ///
    /// Errors if the nominal length is 0.
    ///
    /// ```
    /// use datasets::{BpttWindows, SeqLen, batchify};
    /// let data = batchify(&(0..100).collect::<Vec<u32>>(), 2).unwrap(); // 50 x 2
    /// let lens: Vec<usize> = BpttWindows::new(&data, SeqLen::Fixed(20), 0).unwrap().map(|w| w.seq_len).collect();
    /// assert_eq!(lens, vec![20, 20, 9]);
    /// let w = BpttWindows::new(&data, SeqLen::Random { bptt: 10 }, 1).unwrap().next().unwrap();
    /// assert_eq!(w.target[[0, 0]], w.input[[1, 0]]);
    /// ```
    pub fn new(data: &'a Array2<u32>, policy: SeqLen, seed: u64) -> Result<Self> {
        if policy.nominal() == 0 {
            return Err(DatasetError::invalid(
                "BPTT length 0",
                "use a BPTT length of at least 1",
            ));
        }
        Ok(BpttWindows {
            data: data.view(),
            policy,
            rng: Pcg64Mcg::seed_from_u64(seed),
            pos: 0,
        })
    }

    fn draw_len(&mut self) -> usize {
        match self.policy {
            SeqLen::Fixed(n) => n,
            SeqLen::Random { bptt } => {
                let base = if self.rng.random::<f64>() < 0.95 {
                    bptt
                } else {
                    bptt / 2
                };
                let x = base as f64 + 5.0 * normal_draw::standard_normal(&mut self.rng);
                let len = if x > 0.0 { x.trunc() as usize } else { 0 };
                len.clamp(5, (base + 20).max(5))
            }
        }
    }
}

impl<'a> Iterator for BpttWindows<'a> {
    type Item = BpttWindow<'a>;

    fn next(&mut self) -> Option<BpttWindow<'a>> {
        let steps = self.data.nrows();
        if self.pos + 1 >= steps {
            return None;
        }
        let want = self.draw_len();
        let seq_len = want.min(steps - 1 - self.pos);
        let start = self.pos;
        self.pos += seq_len;
        let data = self.data;
        Some(BpttWindow {
            start,
            seq_len,
            input: data.slice_move(s![start..start + seq_len, ..]),
            target: data.slice_move(s![start + 1..start + 1 + seq_len, ..]),
            lr_scale: seq_len as f32 / self.policy.nominal() as f32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oov_is_error_without_unk_and_unk_otherwise() {
        let err = Corpus::from_texts("a b\n", "a z\n", "")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("<valid text>:1") && err.contains("\"z\""),
            "{err}"
        );
        assert!(err.contains("Fix:"), "{err}");
        let c = Corpus::from_texts("a <unk>\n", "a z\n", "").unwrap();
        assert_eq!(c.valid, vec![0, 1, 2]);
    }

    #[test]
    fn missing_file_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let msg = Corpus::ptb(dir.path()).unwrap_err().to_string();
        assert!(
            msg.contains("ptb.train.txt") && msg.contains("Fix:"),
            "{msg}"
        );
    }

    #[test]
    fn wikitext2_layout_on_generated_text() {
        let dir = tempfile::tempdir().unwrap();
        let wt = dir.path().join("wikitext-2");
        std::fs::create_dir(&wt).unwrap();
        let body = crate::synthetic::synthetic_text(200, 1);
        let train = format!(" \n = Heading = \n \n{body}");
        std::fs::write(wt.join("wiki.train.tokens"), &train).unwrap();
        std::fs::write(wt.join("wiki.valid.tokens"), " a zebra \n").unwrap();
        std::fs::write(
            wt.join("wiki.test.tokens"),
            crate::synthetic::synthetic_text(20, 2),
        )
        .unwrap();
        let c = Corpus::wikitext2(dir.path()).unwrap();
        let eos = c.vocab.id(EOS).unwrap();
        // One <eos> per line, blank lines included.
        assert_eq!(c.train.iter().filter(|&&i| i == eos).count(), 203);
        assert_eq!(c.train.len(), 1 + 4 + 1 + 200 * 7);
        // Unknown valid word maps to <unk>.
        let unk = c.vocab.id(UNK).unwrap();
        assert_eq!(c.valid, vec![c.vocab.id("a").unwrap(), unk, eos]);
        assert_eq!(c.test.len(), 20 * 7);
    }

    #[test]
    fn batchify_errors() {
        assert!(batchify(&[1, 2], 0).is_err());
        assert!(batchify(&[1, 2], 3).is_err());
    }

    #[test]
    fn windows_cover_stream_exactly() {
        let ids: Vec<u32> = (0..10_007).collect();
        let data = batchify(&ids, 7).unwrap();
        for policy in [SeqLen::Fixed(35), SeqLen::Random { bptt: 35 }] {
            let mut next = 0;
            for w in BpttWindows::new(&data, policy, 5).unwrap() {
                assert_eq!(w.start, next);
                assert_eq!(w.input.shape(), &[w.seq_len, 7]);
                for j in 0..7 {
                    for t in 0..w.seq_len {
                        assert_eq!(w.target[[t, j]], w.input[[t, j]] + 1);
                    }
                }
                next += w.seq_len;
            }
            assert_eq!(next, data.nrows() - 1);
        }
    }

    #[test]
    fn random_lengths_follow_awd_recipe() {
        let data = Array2::<u32>::zeros((1_000_000, 1));
        let lens: Vec<usize> = BpttWindows::new(&data, SeqLen::Random { bptt: 70 }, 9)
            .unwrap()
            .take(20_000)
            .map(|w| w.seq_len)
            .collect();
        assert!(lens.iter().all(|&l| (5..=90).contains(&l)));
        let short = lens.iter().filter(|&&l| l < 52).count() as f64 / lens.len() as f64;
        assert!((0.03..0.07).contains(&short), "{short}");
        let long: Vec<f64> = lens
            .iter()
            .filter(|&&l| l >= 52)
            .map(|&l| l as f64)
            .collect();
        let mean = long.iter().sum::<f64>() / long.len() as f64;
        // Truncation toward zero biases the mean down by about 0.5.
        assert!((mean - 69.5).abs() < 0.3, "{mean}");
        // Same seed, same lengths.
        let again: Vec<usize> = BpttWindows::new(&data, SeqLen::Random { bptt: 70 }, 9)
            .unwrap()
            .take(100)
            .map(|w| w.seq_len)
            .collect();
        assert_eq!(again, lens[..100]);
    }
}
