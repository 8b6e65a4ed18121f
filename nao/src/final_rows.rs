//! What `nao cifar` and `nao ptb` share in their final trainings: the rows of `final.json`
//! and the rule that an architecture named by two roles (the random pool's best is the
//! search's best, or the search found a reference cell) is trained once, its second row
//! saying `same_as`.

use crate::Result;

/// One row of a command's `final.json`.
pub trait FinalRow: Clone {
    /// `best`, `random-best`, or a reference architecture's name.
    fn role(&self) -> &str;
    /// The architecture's tokens.
    fn arch(&self) -> &[usize];
    /// The role whose final training this row reuses.
    fn same_as(&self) -> Option<&str>;
    /// This row reported again for `role`: no training time of its own, `same_as` = this
    /// row's role.
    fn reused_for(&self, role: &str) -> Self;
}

/// The row of `role` for `arch`: a copy of the first row in `rows` that trained `arch` itself
/// (not a copy) and passes `also` (e.g. the same dataset), else what `train` returns.
pub fn reuse_or_train<R: FinalRow>(
    rows: &[R],
    role: &str,
    arch: &[usize],
    also: impl Fn(&R) -> bool,
    train: impl FnOnce() -> Result<R>,
) -> Result<R> {
    match rows
        .iter()
        .find(|r| r.arch() == arch && r.same_as().is_none() && also(r))
    {
        Some(earlier) => Ok(earlier.reused_for(role)),
        None => train(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    struct Row {
        role: String,
        arch: Vec<usize>,
        seconds: f64,
        same_as: Option<String>,
    }

    impl FinalRow for Row {
        fn role(&self) -> &str {
            &self.role
        }
        fn arch(&self) -> &[usize] {
            &self.arch
        }
        fn same_as(&self) -> Option<&str> {
            self.same_as.as_deref()
        }
        fn reused_for(&self, role: &str) -> Self {
            Row {
                role: role.into(),
                seconds: 0.0,
                same_as: Some(self.role.clone()),
                ..self.clone()
            }
        }
    }

    fn trained(role: &str, arch: &[usize]) -> Row {
        Row {
            role: role.into(),
            arch: arch.to_vec(),
            seconds: 9.0,
            same_as: None,
        }
    }

    #[test]
    fn the_same_architecture_is_trained_once() {
        let mut rows = vec![trained("best", &[1, 2])];
        let mut calls = 0;
        let mut add = |rows: &mut Vec<Row>, role: &str, arch: &[usize]| {
            let r = reuse_or_train(
                rows,
                role,
                arch,
                |_| true,
                || {
                    calls += 1;
                    Ok(trained(role, arch))
                },
            )
            .unwrap();
            rows.push(r);
        };
        add(&mut rows, "random-best", &[1, 2]);
        add(&mut rows, "other", &[3]);
        // A copy is never the source of another copy: the third row of [1, 2] names `best`.
        add(&mut rows, "third", &[1, 2]);
        assert_eq!(calls, 1);
        assert_eq!(rows[1].same_as.as_deref(), Some("best"));
        assert_eq!(
            (rows[1].seconds, rows[1].arch.as_slice()),
            (0.0, &[1, 2][..])
        );
        assert_eq!(rows[2], trained("other", &[3]));
        assert_eq!(rows[3].same_as.as_deref(), Some("best"));
    }

    #[test]
    fn a_row_failing_the_filter_is_not_reused() {
        let rows = vec![trained("best", &[1, 2])];
        let r = reuse_or_train(
            &rows,
            "best",
            &[1, 2],
            |_| false,
            || Ok(trained("new", &[1, 2])),
        );
        assert_eq!(r.unwrap().role, "new");
    }
}
