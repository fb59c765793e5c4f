//! `safeguard rules`: the policy rules in the data directory's store. A running server picks
//! a change up at its next submission (it checks the rule-set generation each time).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use safeguard_policy::RuleSet;

use crate::cmd_serve::DataDirArg;

/// `safeguard rules ...`
#[derive(Debug, clap::Subcommand)]
pub enum RulesCommand {
    /// Replace the rule set with the rules of a TOML file (`[[rule]]` tables, in order).
    /// Rules whose text changed get a new version; the file is checked before anything is
    /// written.
    Apply(ApplyArgs),
    /// Show the rules in force, with their versions, then the set as a TOML rules file.
    List(ListArgs),
}

/// Arguments of `safeguard rules apply`.
#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// The rules file.
    pub file: PathBuf,
    #[command(flatten)]
    pub data: DataDirArg,
}

/// Arguments of `safeguard rules list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub data: DataDirArg,
}

/// Runs a `rules` subcommand.
pub fn run(cmd: &RulesCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        RulesCommand::Apply(a) => {
            let text = std::fs::read_to_string(&a.file)
                .with_context(|| format!("cannot read {}", a.file.display()))?;
            let set = RuleSet::parse_toml(&text)
                .with_context(|| format!("{} is not a valid rules file", a.file.display()))?;
            let store: std::sync::Arc<dyn safeguard_store::Store> =
                std::sync::Arc::from(a.data.open()?);
            let out = safeguard_engine::action::apply_rules(store.as_ref(), &set)?;
            // As `PUT /v1/rules` records it, by `cli` rather than a key.
            crate::cmd_audit::record(
                &a.data,
                store,
                safeguard_engine::audit::Action::RuleChanged,
                "rules",
                &out.audit_detail(),
            );
            println!(
                "rules applied: {} in force ({} created, {} changed, {} moved, {} unchanged, {} removed)",
                out.rules.len(),
                out.created,
                out.changed,
                out.moved,
                out.unchanged,
                out.removed
            );
            Ok(ExitCode::SUCCESS)
        }
        RulesCommand::List(a) => {
            let store = a.data.open()?;
            let rules = store.rules()?;
            if rules.is_empty() {
                println!("# no rules: the built-in defaults decide (builtin.csam, builtin.match)");
                return Ok(ExitCode::SUCCESS);
            }
            for r in &rules {
                println!("# {:>3}. {} v{}", r.position + 1, r.id, r.version);
            }
            println!("# then the built-in defaults (builtin.csam, builtin.match)\n");
            let set = safeguard_engine::action::stored_rule_set(&rules)?;
            print!("{}", set.to_toml());
            Ok(ExitCode::SUCCESS)
        }
    }
}
