//! Drawings: DOT and SVG for every space are well formed and name every op; the pictures
//! are also written to the target's tmp dir (`space-svg/`) to be looked at.

use models::space::{SpaceKind, space};
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;

/// A tiny XML well-formedness check: tags balance, attributes are quoted, no raw `&`/`<` in
/// text.
fn check_xml(s: &str) {
    let mut stack: Vec<String> = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find('<') {
        let text = &rest[..i];
        assert!(!text.contains('>'), "raw > in text {text:?}");
        for (j, _) in text.match_indices('&') {
            let ent = &text[j..];
            assert!(
                ["&amp;", "&lt;", "&gt;", "&quot;"]
                    .iter()
                    .any(|e| ent.starts_with(e)),
                "raw & in {text:?}"
            );
        }
        let end = rest[i..].find('>').expect("unclosed tag") + i;
        let tag = &rest[i + 1..end];
        assert_eq!(
            tag.matches('"').count() % 2,
            0,
            "unbalanced quotes in <{tag}>"
        );
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(
                stack.pop().as_deref(),
                Some(name.trim()),
                "bad close </{name}>"
            );
        } else if !tag.ends_with('/') {
            let name = tag.split_whitespace().next().unwrap().to_string();
            stack.push(name);
        }
        rest = &rest[end + 1..];
    }
    assert!(stack.is_empty(), "unclosed tags {stack:?}");
}

fn out_dir() -> std::path::PathBuf {
    let d = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("space-svg");
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn svg_and_dot_are_well_formed_and_name_every_op() {
    let dir = out_dir();
    for kind in SpaceKind::ALL {
        let s = space(kind);
        let mut rng = Pcg64Mcg::seed_from_u64(11);
        for k in 0..3 {
            let arch = s.sample(&mut rng);
            let svg = s.to_svg(&arch);
            assert!(svg.starts_with("<svg"), "{kind}: {}", &svg[..40]);
            assert!(svg.trim_end().ends_with("</svg>"));
            check_xml(&svg);
            let dot = s.to_dot(&arch);
            assert!(dot.starts_with("digraph"));
            for pos in 0..s.seq_len() {
                let is_op = kind == SpaceKind::Nb201 || pos % 2 == 1;
                if is_op {
                    let name = s.token_name(pos, arch[pos]);
                    assert!(
                        svg.contains(&format!(">{name}<")),
                        "{kind}: svg lacks {name}"
                    );
                    assert!(
                        dot.contains(&format!("\"{name}\"")),
                        "{kind}: dot lacks {name}"
                    );
                }
            }
            std::fs::write(dir.join(format!("{kind}-{k}.svg")), &svg).unwrap();
            std::fs::write(dir.join(format!("{kind}-{k}.dot")), &dot).unwrap();
        }
    }
}

#[test]
fn svg_of_known_cells() {
    let dir = out_dir();
    let cnn = space(SpaceKind::Cnn);
    // NAONet (spec 1.3), PT-V1 ids 5..=15 shifted to our 0..=10.
    let pt =
        "0 7 1 15 2 8 1 7 0 6 1 7 0 8 4 7 1 5 0 7 | 0 7 1 13 0 6 0 14 0 9 1 10 0 14 2 6 1 11 0 7";
    let flat: Vec<usize> = pt
        .split_whitespace()
        .filter(|w| *w != "|")
        .enumerate()
        .map(|(i, w)| w.parse::<usize>().unwrap() - if i % 2 == 1 { 5 } else { 0 })
        .collect();
    let text: Vec<String> = flat.iter().map(|v| v.to_string()).collect();
    let naonet = cnn.from_text(&text.join(" ")).unwrap();
    let svg = cnn.to_svg(&naonet);
    check_xml(&svg);
    for label in [
        "normal cell",
        "reduction cell",
        "concat = c[k]",
        "0: c[k-2]",
        "1: c[k-1]",
    ] {
        assert!(svg.contains(label), "missing {label}");
    }
    std::fs::write(dir.join("naonet.svg"), svg).unwrap();

    let nb = space(SpaceKind::Nb201);
    let a = nb
        .from_text("|nor_conv_3x3~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|")
        .unwrap();
    let svg = nb.to_svg(&a);
    check_xml(&svg);
    assert!(svg.contains(">none<") && svg.contains("stroke-dasharray"));
    std::fs::write(dir.join("nb201-standard.svg"), svg).unwrap();

    let rnn = space(SpaceKind::Rnn);
    let a = rnn
        .from_text("0 1 0 1 1 1 3 0 4 1 4 1 5 1 1 1 7 1 1 1 1 2")
        .unwrap();
    let svg = rnn.to_svg(&a);
    check_xml(&svg);
    std::fs::write(dir.join("rnn-nao.svg"), svg).unwrap();
}
