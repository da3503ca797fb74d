//! `primer objectives`: the pre-training objectives, their settings and the commands their
//! runs support.

use primer_objectives::{OBJECTIVES, ObjectiveConfig};

/// Runs `primer objectives`: one entry per registered objective.
pub fn run() {
    for registration in OBJECTIVES {
        let info = registration.info;
        let defaults = ObjectiveConfig::default_of(info.name).expect("registered");
        let settings: Vec<String> = defaults
            .settings()
            .as_object()
            .into_iter()
            .flatten()
            .map(|(key, value)| format!("{key}={value}"))
            .collect();
        let commands = [(info.generates(), "generate"), (info.fills_masks(), "fill-mask")];
        let extra: Vec<&str> = commands.iter().filter(|(yes, _)| *yes).map(|(_, c)| *c).collect();
        println!("{:<8} {}", info.name, info.description);
        println!(
            "         settings: {}",
            if settings.is_empty() {
                "none".into()
            } else {
                settings.join(" ")
            }
        );
        println!(
            "         commands: eval score finetune classify prompt-classify multiple-choice {}",
            extra.join(" ")
        );
    }
}
