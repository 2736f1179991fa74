//! "Did you mean": the known name nearest to a misspelt one.

/// The name among `known` nearest to `unknown` by edit distance, if one
/// is near enough to be what was meant (at most 3 edits, or a third of
/// its length for long names).
pub fn nearest<'a>(unknown: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        .map(|candidate| (strsim::damerau_levenshtein(unknown, candidate), candidate))
        .filter(|(distance, candidate)| *distance <= 3.max(candidate.len() / 3))
        .min()
        .map(|(_, nearest)| nearest)
}

/// `; did you mean `x`?` for the name nearest to `unknown`, else nothing.
pub fn did_you_mean<'a>(unknown: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    nearest(unknown, known).map_or_else(String::new, |n| format!("; did you mean `{n}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_near_name_is_suggested_and_a_far_one_is_not() {
        let known = ["threshold", "group_by", "records"];
        assert_eq!(nearest("treshold", known), Some("threshold"));
        assert_eq!(nearest("groupby", known), Some("group_by"));
        assert_eq!(nearest("something_else_entirely", known), None);
        assert_eq!(did_you_mean("recods", known), "; did you mean `records`?");
        assert_eq!(did_you_mean("zzzzzzzzzz", known), "");
    }
}
