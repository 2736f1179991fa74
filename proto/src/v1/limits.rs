//! The sizes Baton accepts from flows and clients, shared by the core, the
//! agent and the sandbox. Each is well inside the link's frame
//! ([`super::link::MAX_FRAME_BYTES`]), so whatever keeps to them can always
//! be delivered; what exceeds one is refused with a message that names it.

/// A run's output (JSON): a larger one ends the run `FAILED`.
pub const MAX_OUTPUT_BYTES: usize = 4 << 20;
/// A run's parameters (JSON, merged with its deployment's defaults): a
/// larger run is refused at creation (413).
pub const MAX_PARAMETERS_BYTES: usize = 1 << 20;
/// A deployment's or a run's job variables (JSON): larger ones are refused
/// (413).
pub const MAX_JOB_VARIABLES_BYTES: usize = 64 << 10;
/// A work pool's base job template (JSON): a larger one is refused (413).
pub const MAX_JOB_TEMPLATE_BYTES: usize = 256 << 10;
/// One event a flow emits (name, resource and payload together): a larger
/// one ends the run `FAILED`.
pub const MAX_EVENT_BYTES: usize = 256 << 10;
/// One log line, state message or task error: a longer one is cut, with a
/// marker saying how much.
pub const MAX_MESSAGE_BYTES: usize = 64 << 10;

/// A flow's parameter schema, as its `describe` returns it: a larger one
/// is refused at upload.
pub const MAX_SCHEMA_BYTES: usize = 256 << 10;
/// A flow's description, likewise.
pub const MAX_DESCRIPTION_BYTES: usize = 16 << 10;
/// A flow's version, likewise.
pub const MAX_VERSION_BYTES: usize = 128;
/// The longest name of a flow, deployment, pool, queue or variable.
pub const MAX_NAME_CHARS: usize = 100;

/// Whether `name` may name a flow, deployment and the like: 1 to
/// [`MAX_NAME_CHARS`] letters, digits, `-`, `_` or `.`, not starting with
/// `.` (so never `.` or `..` in a path). `Err` says so in words.
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME_CHARS
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{what} name `{}` must be 1 to {MAX_NAME_CHARS} letters, digits, `-`, `_` or `.`, not starting with `.`",
            cut(name, 200)
        ))
    }
}

/// What [`check_name`] takes, as a regular expression (for the OpenAPI
/// document): 1 to [`MAX_NAME_CHARS`] letters, digits, `-`, `_` or `.`, not
/// starting with `.`.
pub fn name_pattern() -> String {
    format!("^[A-Za-z0-9_-][A-Za-z0-9._-]{{0,{}}}$", MAX_NAME_CHARS - 1)
}

/// `FLOW/NAME` of a deployment, as a regular expression.
pub fn deployment_pattern() -> String {
    let name = name_pattern();
    let inner = name.trim_start_matches('^').trim_end_matches('$');
    format!("^{inner}/{inner}$")
}

/// What an event name may be (for the OpenAPI document): anything but
/// empty or with a `*`, which stands for "any" in automations and filters.
pub const EVENT_NAME_PATTERN: &str = "^[^*]+$";

/// An artifact's digest, with or without its `sha256:` prefix.
pub const DIGEST_PATTERN: &str = "^(sha256:)?[0-9a-f]{64}$";

/// A size for people: `12 bytes`, `256 KiB`, `10.0 MiB`.
pub fn human_bytes(bytes: usize) -> String {
    const KIB: usize = 1 << 10;
    const MIB: usize = 1 << 20;
    if bytes < KIB {
        format!("{bytes} bytes")
    } else if bytes < MIB {
        if bytes.is_multiple_of(KIB) {
            format!("{} KiB", bytes / KIB)
        } else {
            format!("{:.1} KiB", bytes as f64 / KIB as f64)
        }
    } else if bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{:.1} MiB", bytes as f64 / MIB as f64)
    }
}

/// "what of N exceeds the L limit", the message of every size refusal.
pub fn over_limit(what: &str, bytes: usize, limit: usize) -> String {
    format!("{what} of {} exceeds the {} limit", human_bytes(bytes), human_bytes(limit))
}

/// `text` cut to at most `limit` bytes on a character boundary, with a
/// marker saying how much was cut.
pub fn cut(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… [{} bytes cut]", text.get(..end).unwrap_or_default(), text.len() - end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::link::MAX_FRAME_BYTES;

    #[test]
    fn every_limit_leaves_room_in_a_frame() {
        let frame = MAX_FRAME_BYTES as usize;
        // An outcome carries the output (escaped once more inside the
        // frame's JSON at worst); an assignment the parameters, with the
        // deployment's grants beside them.
        assert!(MAX_OUTPUT_BYTES * 2 <= frame);
        assert!(MAX_PARAMETERS_BYTES * 4 <= frame);
        // Its job variables: the template's defaults under the
        // deployment's and the run's.
        assert!(
            MAX_PARAMETERS_BYTES * 4 + MAX_JOB_TEMPLATE_BYTES + MAX_JOB_VARIABLES_BYTES * 2
                <= frame
        );
        const { assert!(MAX_EVENT_BYTES < MAX_OUTPUT_BYTES && MAX_MESSAGE_BYTES < MAX_EVENT_BYTES) };
    }

    #[test]
    fn names_are_path_safe() {
        for good in ["hello", "etl-2", "a.b_c", "X"] {
            assert_eq!(check_name("flow", good), Ok(()), "{good}");
        }
        for bad in ["", ".", "..", "../../etc", "a/b", "a b", "é", &"x".repeat(101)] {
            assert!(check_name("flow", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_bytes(12), "12 bytes");
        assert_eq!(human_bytes(256 << 10), "256 KiB");
        assert_eq!(human_bytes(10 << 20), "10 MiB");
        assert_eq!(human_bytes((10 << 20) + (1 << 19)), "10.5 MiB");
        assert_eq!(
            over_limit("output", 10 << 20, MAX_OUTPUT_BYTES),
            "output of 10 MiB exceeds the 4 MiB limit"
        );
    }

    #[test]
    fn text_is_cut_on_a_character_boundary_with_a_marker() {
        let text = "é".repeat(100);
        let short = cut(&text, 51);
        assert!(
            short.starts_with(&"é".repeat(25)) && short.ends_with("[150 bytes cut]"),
            "{short}"
        );
        assert_eq!(cut("short", 10), "short");
    }
}
