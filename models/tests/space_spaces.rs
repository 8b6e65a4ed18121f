//! The search spaces against their contract: sizes, masks vs validation, error messages,
//! sampling, symmetric variants and canonical forms, text / JSON / flat round trips.

use std::collections::HashSet;

use models::space::cnn::{CnnArch, CnnOp};
use models::space::nb201::Nb201Op;
use models::space::rnn::Activation;
use models::space::{
    ArchError, ArchJson, CnnSpace, Nb201Space, RnnSpace, SearchSpace, SpaceKind, space,
};
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;

fn all() -> Vec<Box<dyn SearchSpace>> {
    SpaceKind::ALL.into_iter().map(space).collect()
}

#[test]
fn sizes() {
    let want = [
        (SpaceKind::CnnWs, 12, 40, 2),
        (SpaceKind::Cnn, 18, 40, 2),
        (SpaceKind::Rnn, 16, 22, 2),
        (SpaceKind::Nb201, 6, 6, 1),
    ];
    for (kind, vocab, len, step) in want {
        let s = space(kind);
        assert_eq!(s.kind(), kind);
        assert_eq!(s.vocab_size(), vocab, "{kind}");
        assert_eq!(s.seq_len(), len, "{kind}");
        assert_eq!(s.tokens_per_step(), step, "{kind}");
        assert_eq!(s.seq_len() % s.tokens_per_step(), 0);
    }
    assert_eq!(space(SpaceKind::Nb201).num_archs(), 15_625);
    // (2*3*4*5*6)^2 * 5^10 per cell, two cells.
    let ws_cell: u128 = 720 * 720 * 5u128.pow(10);
    assert_eq!(space(SpaceKind::CnnWs).num_archs(), ws_cell * ws_cell);
    // RNN: 11! predecessor choices x 4^11 activations.
    assert_eq!(
        space(SpaceKind::Rnn).num_archs(),
        (1..=11u128).product::<u128>() * 4u128.pow(11)
    );
}

#[test]
fn decoder_masks_follow_spec_1_5() {
    let ws = CnnSpace::WS;
    for pos in 0..40 {
        let r = pos % 20;
        let node = r / 4;
        if r % 2 == 0 {
            assert_eq!(ws.allowed(pos), 1..=node + 2, "pos {pos}");
        } else {
            assert_eq!(ws.allowed(pos), 7..=11, "pos {pos}");
            assert_eq!(CnnSpace::FULL.allowed(pos), 7..=17, "pos {pos}");
        }
    }
    for pos in 0..22 {
        let want = if pos % 2 == 0 {
            1..=pos / 2 + 1
        } else {
            12..=15
        };
        assert_eq!(RnnSpace.allowed(pos), want, "pos {pos}");
    }
    for pos in 0..6 {
        assert_eq!(Nb201Space.allowed(pos), 1..=5);
    }
    for s in all() {
        for pos in 0..s.seq_len() {
            let m = s.mask(pos);
            assert_eq!(m.len(), s.vocab_size());
            assert!(!m[0], "{}: <sos> allowed at {pos}", s.kind());
        }
    }
}

#[test]
fn masks_agree_with_validate() {
    let mut rng = Pcg64Mcg::seed_from_u64(1);
    for s in all() {
        let base = s.sample(&mut rng);
        for pos in 0..s.seq_len() {
            let mask = s.mask(pos);
            for t in 0..s.vocab_size() + 3 {
                let mut a = base.clone();
                a[pos] = t;
                let ok = s.validate(&a).is_ok();
                assert_eq!(
                    ok,
                    mask.get(t).copied().unwrap_or(false),
                    "{} pos {pos} token {t}",
                    s.kind()
                );
            }
        }
    }
}

#[test]
fn every_validation_error_names_position_and_rule() {
    let mut rng = Pcg64Mcg::seed_from_u64(2);
    for s in all() {
        let base = s.sample(&mut rng);
        for pos in 0..s.seq_len() {
            let bad = *s.allowed(pos).end() + 1;
            for token in [0, bad] {
                let mut a = base.clone();
                a[pos] = token;
                let e = s.validate(&a).unwrap_err();
                let msg = e.to_string();
                assert!(
                    msg.contains(&format!("token {token} at position {pos} (")),
                    "{msg}"
                );
                assert!(msg.contains(&s.place(pos)), "{msg}");
                assert!(msg.contains(&s.rule(pos)), "{msg}");
                let r = s.allowed(pos);
                assert!(
                    msg.contains(&format!("{}..={}", r.start(), r.end())),
                    "{msg}"
                );
                assert!(matches!(e, ArchError::BadToken { pos: p, .. } if p == pos));
            }
        }
        let e = s.validate(&base[1..]).unwrap_err();
        assert_eq!(
            e,
            ArchError::WrongLength {
                space: s.kind().to_string(),
                what: "tokens",
                expected: s.seq_len(),
                got: s.seq_len() - 1
            }
        );
        assert!(
            e.to_string()
                .contains(&format!("expected {} tokens", s.seq_len()))
        );
    }
}

#[test]
fn example_error_message() {
    let s = CnnSpace::WS;
    let mut a = s.sample(&mut Pcg64Mcg::seed_from_u64(0));
    a[4] = 9;
    assert_eq!(
        s.validate(&a).unwrap_err().to_string(),
        "token 9 at position 4 (normal cell, node 1 (hidden state 3), branch a input) is not \
         allowed: inputs of node 1 must be tokens 1..=3 (hidden states 0..=2)"
    );
    a[4] = 1;
    a[27] = 12;
    assert_eq!(
        s.validate(&a).unwrap_err().to_string(),
        "token 12 at position 27 (reduction cell, node 1 (hidden state 3), branch b op) is not \
         allowed: ops must be tokens 7..=11 (7=sep_conv_3x3, 8=sep_conv_5x5, 9=avg_pool_3x3, \
         10=max_pool_3x3, 11=identity)"
    );
    let mut r = RnnSpace.sample(&mut Pcg64Mcg::seed_from_u64(0));
    r[4] = 5;
    assert_eq!(
        RnnSpace.validate(&r).unwrap_err().to_string(),
        "token 5 at position 4 (node 3, predecessor) is not allowed: the predecessor of node 3 \
         must be tokens 1..=3 (nodes 0..=2)"
    );
}

#[test]
fn sampling_is_seeded_valid_and_covers_every_token() {
    for s in all() {
        let draw = |seed| {
            let mut rng = Pcg64Mcg::seed_from_u64(seed);
            (0..2000).map(|_| s.sample(&mut rng)).collect::<Vec<_>>()
        };
        let a = draw(42);
        assert_eq!(a, draw(42), "{}: not reproducible", s.kind());
        assert_ne!(a, draw(43), "{}: seed ignored", s.kind());
        for arch in &a {
            s.validate(arch).unwrap();
        }
        for pos in 0..s.seq_len() {
            let seen: HashSet<usize> = a.iter().map(|x| x[pos]).collect();
            let want: HashSet<usize> = s.allowed(pos).collect();
            assert_eq!(seen, want, "{} pos {pos}", s.kind());
        }
    }
}

#[test]
fn sampling_is_roughly_uniform() {
    // Position 38 of cnn-ws (reduction node 4, branch b input) has 6 values.
    let s = CnnSpace::WS;
    let mut rng = Pcg64Mcg::seed_from_u64(5);
    let mut counts = [0usize; 12];
    let n = 60_000;
    for _ in 0..n {
        counts[s.sample(&mut rng)[38]] += 1;
    }
    for (t, &c) in counts.iter().enumerate().skip(1).take(6) {
        let p = c as f64 / n as f64;
        assert!((p - 1.0 / 6.0).abs() < 0.01, "token {t}: {p}");
    }
}

#[test]
fn symmetric_variants_and_canonical_forms() {
    let mut rng = Pcg64Mcg::seed_from_u64(3);
    for s in all() {
        for _ in 0..500 {
            let a = s.sample(&mut rng);
            let v = s.symmetric_variant(&a, &mut rng);
            s.validate(&v).unwrap();
            let c = s.canonical(&a);
            s.validate(&c).unwrap();
            assert_eq!(s.canonical(&v), c, "{}", s.kind());
            assert_eq!(s.canonical(&c), c, "{}: canonical not idempotent", s.kind());
        }
    }
}

#[test]
fn cnn_variant_swaps_one_node_per_cell() {
    let s = CnnSpace::FULL;
    let mut rng = Pcg64Mcg::seed_from_u64(4);
    let mut swapped_nodes = HashSet::new();
    for _ in 0..400 {
        let a = s.sample(&mut rng);
        let v = s.symmetric_variant(&a, &mut rng);
        for cell in 0..2 {
            let mut changed = Vec::new();
            for node in 0..5 {
                let at = cell * 20 + node * 4;
                let (x, y) = (&a[at..at + 4], &v[at..at + 4]);
                if x != y {
                    assert_eq!([y[2], y[3], y[0], y[1]], [x[0], x[1], x[2], x[3]]);
                    changed.push(node);
                }
            }
            assert!(changed.len() <= 1);
            if let Some(&n) = changed.first() {
                swapped_nodes.insert((cell, n));
            }
        }
    }
    assert_eq!(
        swapped_nodes.len(),
        10,
        "every node of both cells gets swapped sometimes"
    );
    // The identity for rnn and nb201.
    let r = RnnSpace.sample(&mut rng);
    assert_eq!(RnnSpace.symmetric_variant(&r, &mut rng), r);
}

#[test]
fn cnn_canonical_orders_branches() {
    let s = CnnSpace::WS;
    let a = s
        .from_text("normal: [1 identity, 0 sep_conv_3x3] [1 max_pool_3x3, 1 avg_pool_3x3] [2 sep_conv_5x5, 2 sep_conv_3x3] [0 identity, 4 identity] [5 identity, 5 identity] | reduction: [0 sep_conv_3x3, 0 sep_conv_3x3] [2 identity, 0 identity] [3 identity, 3 identity] [4 sep_conv_3x3, 0 identity] [1 identity, 0 avg_pool_3x3]")
        .unwrap();
    assert_eq!(
        s.to_text(&s.canonical(&a)),
        "normal: [0 sep_conv_3x3, 1 identity] [1 avg_pool_3x3, 1 max_pool_3x3] [2 sep_conv_3x3, 2 sep_conv_5x5] [0 identity, 4 identity] [5 identity, 5 identity] | reduction: [0 sep_conv_3x3, 0 sep_conv_3x3] [0 identity, 2 identity] [3 identity, 3 identity] [0 identity, 4 sep_conv_3x3] [0 avg_pool_3x3, 1 identity]"
    );
}

#[test]
fn text_json_flat_round_trips() {
    let mut rng = Pcg64Mcg::seed_from_u64(6);
    for s in all() {
        for _ in 0..300 {
            let a = s.sample(&mut rng);
            let text = s.to_text(&a);
            assert_eq!(s.from_text(&text).unwrap(), a, "{}: {text}", s.kind());
            let json = s.to_json(&a);
            assert_eq!(s.from_json(&json).unwrap(), a, "{}: {json}", s.kind());
            let j: ArchJson = serde_json::from_str(&json).unwrap();
            assert_eq!((j.space, &j.tokens, &j.text), (s.kind(), &a, &text));
        }
    }
    for s in [CnnSpace::WS, CnnSpace::FULL] {
        for _ in 0..300 {
            let a = s.sample(&mut rng);
            let flat = s.to_flat(&a);
            assert_eq!(s.from_flat(&flat).unwrap(), a);
            let flat_text: Vec<String> = flat.iter().map(|v| v.to_string()).collect();
            assert_eq!(s.from_text(&flat_text.join(" ")).unwrap(), a);
            let d = s.decode(&a).unwrap();
            assert_eq!(s.encode(&d).unwrap(), a);
            assert_eq!(CnnArch::from_flat(&s, &flat).unwrap(), d);
            let dj = serde_json::to_string(&d).unwrap();
            assert_eq!(serde_json::from_str::<CnnArch>(&dj).unwrap(), d);
        }
    }
    for _ in 0..300 {
        let a = RnnSpace.sample(&mut rng);
        let flat = RnnSpace.to_flat(&a);
        assert_eq!(RnnSpace.from_flat(&flat).unwrap(), a);
        assert_eq!(RnnSpace.encode(&RnnSpace.decode(&a).unwrap()).unwrap(), a);
        let n = Nb201Space.sample(&mut rng);
        assert_eq!(Nb201Space.encode(&Nb201Space.decode(&n).unwrap()), n);
    }
}

#[test]
fn json_errors() {
    let s = CnnSpace::WS;
    let a = s.sample(&mut Pcg64Mcg::seed_from_u64(8));
    let json = s.to_json(&a);
    assert!(matches!(
        CnnSpace::FULL.from_json(&json),
        Err(ArchError::WrongSpace { .. })
    ));
    assert!(matches!(s.from_json("{"), Err(ArchError::Json(_))));
    // text may be left out
    let tokens: Vec<String> = a.iter().map(|t| t.to_string()).collect();
    let bare = format!("{{\"space\":\"cnn-ws\",\"tokens\":[{}]}}", tokens.join(","));
    assert_eq!(s.from_json(&bare).unwrap(), a);
    // but if given must agree
    let mut j: ArchJson = serde_json::from_str(&json).unwrap();
    j.text = s.to_text(&s.sample(&mut Pcg64Mcg::seed_from_u64(9)));
    let e = s
        .from_json(&serde_json::to_string(&j).unwrap())
        .unwrap_err();
    assert!(e.to_string().contains("does not describe"), "{e}");
    // bad tokens are reported as in validate
    let mut bad = a.clone();
    bad[2] = 0;
    let tokens: Vec<String> = bad.iter().map(|t| t.to_string()).collect();
    let e = s
        .from_json(&format!(
            "{{\"space\":\"cnn-ws\",\"tokens\":[{}]}}",
            tokens.join(",")
        ))
        .unwrap_err();
    assert!(e.to_string().contains("at position 2"), "{e}");
}

#[test]
fn flat_form_errors_are_in_flat_terms() {
    let s = CnnSpace::WS;
    let mut flat = vec![0usize; 40];
    flat[4] = 3; // node 1 may read hidden states 0..=2
    let e = s.from_flat(&flat).unwrap_err().to_string();
    assert_eq!(
        e,
        "value 3 at position 4 of the flat form (normal cell, node 1 (hidden state 3), branch a \
         input) is not allowed: inputs of node 1 must be hidden states 0..=2"
    );
    flat[4] = 0;
    flat[21] = 5;
    let e = s.from_text(
        &flat
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(" "),
    );
    let e = e.unwrap_err().to_string();
    assert!(
        e.contains("value 5 at position 21") && e.contains("op ids are 0..=4"),
        "{e}"
    );
    assert!(matches!(
        s.from_flat(&[0; 39]),
        Err(ArchError::WrongLength {
            expected: 40,
            got: 39,
            ..
        })
    ));
    let e = RnnSpace
        .from_text("1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0")
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("predecessor of node 1 must be a node in 0..=0"),
        "{e}"
    );
    let e = Nb201Space.from_text("0 1 2 3 4 5").unwrap_err();
    assert!(e.to_string().contains("value 5 at position 5"), "{e}");
}

#[test]
fn text_parse_errors_say_what_is_wrong() {
    let s = CnnSpace::WS;
    let cases = [
        ("normal: [0 sep_conv_3x3, 1 identity]", "one `|`"),
        (
            "normal: [0 sep_conv_3x3, 1 identity] | reduction: [0 identity, 1 identity]",
            "a cell has 5 nodes",
        ),
        (
            "normal: [0 conv_3x3, 1 identity] | x",
            "op not in the cnn-ws space",
        ),
        ("normal: [0 bogus, 1 identity] | x", "unknown op"),
        ("normal: [0 identity 1 identity] | x", "2 branches"),
        ("normal: [x identity, 1 identity] | x", "hidden-state index"),
        ("0 0 1 three", "non-negative integer"),
    ];
    for (text, want) in cases {
        let e = s.from_text(text).unwrap_err().to_string();
        assert!(e.contains(want), "{text:?}: {e}");
    }
    let e = RnnSpace
        .from_text("[0 tanh] [0 swish]")
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown activation"), "{e}");
}

#[test]
fn spec_architectures_parse() {
    // NAONet (spec 1.3) in PT-V1 ids; our full-space op ids are PT-V1's minus 5.
    let pt =
        "0 7 1 15 2 8 1 7 0 6 1 7 0 8 4 7 1 5 0 7 | 0 7 1 13 0 6 0 14 0 9 1 10 0 14 2 6 1 11 0 7";
    let ours: Vec<String> = pt
        .split_whitespace()
        .filter(|w| *w != "|")
        .enumerate()
        .map(|(i, w)| (w.parse::<usize>().unwrap() - if i % 2 == 1 { 5 } else { 0 }).to_string())
        .collect();
    let s = CnnSpace::FULL;
    let a = CnnArch::from_flat(&s, &s.to_flat(&s.from_text(&ours.join(" ")).unwrap())).unwrap();
    assert_eq!(a.normal.nodes[0].a.op, CnnOp::Conv3x3);
    assert_eq!(a.normal.nodes[0].b.op, CnnOp::AvgPool5x5);
    assert_eq!(a.reduction.nodes[2].a.op, CnnOp::Conv1x7_7x1); // TF "node_5"
    assert_eq!(a.normal.loose_ends(), vec![3, 5, 6]);
    assert_eq!(a.reduction.loose_ends(), vec![3, 4, 5, 6]);
    // RNN cells of spec 1.6.
    let nao = RnnSpace
        .from_text("0 1 0 1 1 1 3 0 4 1 4 1 5 1 1 1 7 1 1 1 1 2")
        .unwrap();
    let ws = RnnSpace
        .from_text("0 1 1 1 2 2 1 2 4 1 4 1 4 1 7 1 8 2 1 0 4 1")
        .unwrap();
    assert_eq!(
        RnnSpace.decode(&nao).unwrap().nodes[10].act,
        Activation::Sigmoid
    );
    assert_eq!(RnnSpace.decode(&ws).unwrap().nodes[9].act, Activation::Tanh);
    assert_eq!(RnnSpace.from_text(&RnnSpace.to_text(&ws)).unwrap(), ws);
}

#[test]
fn space_kind_names() {
    for k in SpaceKind::ALL {
        assert_eq!(k.to_string().parse::<SpaceKind>().unwrap(), k);
        assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{k}\""));
    }
    assert_eq!(
        SpaceKind::ALL.map(|k| k.to_string()),
        ["cnn-ws", "cnn", "rnn", "nb201"]
    );
    assert!("cnn_ws".parse::<SpaceKind>().is_err());
}

const STANDARD: &str =
    "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|";

#[test]
fn nb201_standard_string() {
    let s = Nb201Space;
    let a = s.from_text(STANDARD).unwrap();
    assert_eq!(a, vec![4, 2, 1, 5, 3, 2]);
    assert_eq!(s.to_text(&a), STANDARD);
    let c = s.decode(&a).unwrap();
    assert_eq!(c.op(3, 2), Nb201Op::SkipConnect);
    assert_eq!(c.op(2, 1), Nb201Op::None);
    // Group members in another order parse to the same cell.
    let shuffled =
        "|nor_conv_3x3~0|+|none~1|skip_connect~0|+|skip_connect~2|avg_pool_3x3~0|nor_conv_1x1~1|";
    assert_eq!(s.from_text(shuffled).unwrap(), a);
    assert_eq!(s.from_text("3 1 0 4 2 1").unwrap(), a);
    // every architecture prints and parses back
    let mut n = 0;
    for code in 0..15_625usize {
        let arch: Vec<usize> = (0..6).map(|e| (code / 5usize.pow(e)) % 5 + 1).collect();
        assert_eq!(s.from_text(&s.to_text(&arch)).unwrap(), arch);
        n += 1;
    }
    assert_eq!(n, 15_625);
}

#[test]
fn nb201_parse_errors() {
    let s = Nb201Space;
    let cases = [
        (
            "|nor_conv_3x3~0|+|skip_connect~0|none~1|",
            "expected 3 groups",
        ),
        (
            "|nor_conv_3x3~0|+|skip_connect~0|+|a~0|b~1|c~2|",
            "node 2 has 2 incoming edges",
        ),
        (
            "|nor_conv_3x3~1|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|",
            "into node 1 must be 0..=0",
        ),
        (
            "|nor_conv_3x3~0|+|skip_connect~0|none~0|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|",
            "edge 2<-0 given twice",
        ),
        (
            "|conv~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|",
            "unknown op",
        ),
        (
            "nor_conv_3x3~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|",
            "must start and end with `|`",
        ),
        (
            "|nor_conv_3x3 0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|",
            "`op~source`",
        ),
    ];
    for (text, want) in cases {
        let e = s.from_text(text).unwrap_err().to_string();
        assert!(e.contains(want), "{text:?}: {e}");
    }
}

#[test]
fn nb201_dead_edges_by_hand() {
    let s = Nb201Space;
    let canon = |t: &str| s.to_text(&s.canonical(&s.from_text(t).unwrap()));
    // Nothing dead: unchanged.
    assert_eq!(canon(STANDARD), STANDARD);
    // Node 1 gets only `none`: its outgoing edges 2<-1 and 3<-1 are dead.
    assert_eq!(
        canon(
            "|none~0|+|skip_connect~0|nor_conv_3x3~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|"
        ),
        "|none~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|none~1|skip_connect~2|"
    );
    // Node 2 feeds nothing (3<-2 none): its inputs 2<-0, 2<-1 are dead.
    assert_eq!(
        canon(
            "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|"
        ),
        "|nor_conv_3x3~0|+|none~0|none~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|"
    );
    // Node 1 reaches the output only through node 2, which does reach it: all live.
    let chain = "|nor_conv_3x3~0|+|none~0|nor_conv_1x1~1|+|none~0|none~1|skip_connect~2|";
    assert_eq!(canon(chain), chain);
    // The chain broken at 2<-1: nodes 1 and 2 are both dead, so every edge is.
    assert_eq!(
        canon("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|"),
        "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    );
    // Node 1 unused by anyone (2<-1, 3<-1 none): 1<-0 dead.
    assert_eq!(
        canon("|avg_pool_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|nor_conv_1x1~2|"),
        "|none~0|+|skip_connect~0|none~1|+|none~0|none~1|nor_conv_1x1~2|"
    );
    // Canonical forms collapse the 15,625 cells; idempotent, and every live edge kept.
    let mut forms = HashSet::new();
    for code in 0..15_625usize {
        let arch: Vec<usize> = (0..6).map(|e| (code / 5usize.pow(e)) % 5 + 1).collect();
        let c = s.canonical(&arch);
        assert_eq!(s.canonical(&c), c);
        let live = s.decode(&arch).unwrap().live_edges();
        for e in 0..6 {
            assert_eq!(c[e] == arch[e], live[e] || arch[e] == 1, "{arch:?}");
        }
        forms.insert(c);
    }
    // Cells with output zero collapse to one; others keep only live edges.
    assert!(
        forms.len() < 15_625 && forms.len() > 5_000,
        "{}",
        forms.len()
    );
}
