//! A line diff of two overlay texts, for the history: what a version changed.

/// Lines beyond which the diff does not look for common lines (the table is n × m)
/// and shows the old text removed and the new one added.
const MAX_CELLS: usize = 4_000_000;

/// The lines of `new` not in `old` as "+ line", those of `old` not in `new` as
/// "- line", in file order (longest common subsequence; unchanged lines left out).
pub fn lines(old: &str, new: &str) -> Vec<String> {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    if a.len().saturating_mul(b.len()) > MAX_CELLS {
        let removed = a.iter().map(|l| format!("- {l}"));
        return removed.chain(b.iter().map(|l| format!("+ {l}"))).collect();
    }
    // common[i][j]: length of the longest common subsequence of a[i..] and b[j..].
    let mut common = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            common[i][j] = if a[i] == b[j] {
                common[i + 1][j + 1] + 1
            } else {
                common[i + 1][j].max(common[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || common[i][j + 1] >= common[i + 1][j]) {
            out.push(format!("+ {}", b[j]));
            j += 1;
        } else {
            out.push(format!("- {}", a[i]));
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_lines_only_in_order() {
        let old = "a\nb\nc\n";
        let new = "a\nc\nd\n";
        assert_eq!(lines(old, new), ["- b", "+ d"]);
        assert_eq!(lines("", "x\ny"), ["+ x", "+ y"]);
        assert_eq!(lines("x", ""), ["- x"]);
        assert!(lines("same\n", "same\n").is_empty());
    }
}
