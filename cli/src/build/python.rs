//! Python flows: a project with a `pyproject.toml`, built with
//! componentize-py into a component of the `flow-component` world. The
//! Python SDK and the contract (`wit/flow.wit`) are carried in this binary,
//! so the component always matches the host that built it; the project's
//! dependencies are bundled when they are pure Python, and refused by name
//! when they are native extensions (which cannot run in the sandbox).
//!
//! componentize-py's output differs from build to build of the same
//! source, so a build whose inputs are unchanged returns the component it
//! built before: the same bytes, hence the same artifact and no new compile
//! on the agents.

use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::BuildFailed;

/// The componentize-py this binary builds with (CPython 3.14 inside).
const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";

/// The Python SDK (`import baton`), as this binary carries it.
const SDK: [(&str, &str); 6] = [
    ("__init__.py", include_str!("../../../sdk/python/baton/__init__.py")),
    ("_component.py", include_str!("../../../sdk/python/baton/_component.py")),
    ("_flow.py", include_str!("../../../sdk/python/baton/_flow.py")),
    ("_host.py", include_str!("../../../sdk/python/baton/_host.py")),
    ("_json.py", include_str!("../../../sdk/python/baton/_json.py")),
    ("_task.py", include_str!("../../../sdk/python/baton/_task.py")),
];

/// The contract the component is built against.
const WIT: &str = include_str!("../../../wit/flow.wit");

/// The module componentize-py starts from: it imports the project's flow
/// module (which registers the `@flow`), then the SDK's export.
const ENTRY: &str = "baton_entry";

#[derive(Deserialize)]
struct PyProjectFile {
    project: Option<ProjectTable>,
    #[serde(default)]
    tool: ToolTable,
}

#[derive(Deserialize)]
struct ProjectTable {
    name: String,
    #[serde(default)]
    dependencies: Vec<String>,
}

#[derive(Deserialize, Default)]
struct ToolTable {
    baton: Option<BatonTable>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatonTable {
    /// The module whose import registers the flow.
    module: Option<String>,
}

/// What a build needs from `pyproject.toml`.
struct PyProject {
    /// The module that defines the `@flow`.
    module: String,
    /// Requirements to bundle (PEP 508, as pip takes them).
    dependencies: Vec<String>,
}

impl PyProject {
    fn read(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join("pyproject.toml");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let file: PyProjectFile =
            toml::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
        let Some(project) = file.project else {
            bail!(
                "{}: a Python flow's project needs a [project] table with its name",
                path.display()
            )
        };
        let module = match file.tool.baton.and_then(|b| b.module) {
            Some(module) => module,
            None => {
                let named = project.name.replace('-', "_");
                let found = ["flow".to_owned(), named.clone()].into_iter().find(|m| {
                    dir.join(format!("{m}.py")).is_file()
                        || dir.join(m).join("__init__.py").is_file()
                });
                found.with_context(|| {
                    format!(
                        "{}: no flow.py or {named}.py: name the module that defines the @flow in [tool.baton] module",
                        path.display()
                    )
                })?
            }
        };
        if !module.split('.').all(|part| {
            !part.is_empty()
                && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !part.starts_with(|c: char| c.is_ascii_digit())
        }) {
            bail!("{}: [tool.baton] module `{module}` is not a Python module name", path.display());
        }
        Ok(Self { module, dependencies: project.dependencies })
    }
}

/// Builds the Python project in `dir`; the component is
/// `DIR/.baton/flow.wasm`.
pub(super) fn build(dir: &Path) -> anyhow::Result<PathBuf> {
    let dir = dir.canonicalize().with_context(|| format!("resolving {}", dir.display()))?;
    let project = PyProject::read(&dir)?;
    let tool = componentize_py()?;
    let work = dir.join(".baton");
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    // What a build writes is not the project's source.
    std::fs::write(work.join(".gitignore"), "*\n")?;

    let deps = work.join("deps");
    install_dependencies(&tool, &project.dependencies, &deps)?;
    let sdk = work.join("sdk");
    write_tree(&sdk.join("baton"), &SDK)?;
    write_tree(&work.join("wit"), &[("flow.wit", WIT)])?;
    let entry = work.join("entry");
    let entry_source = format!("import {}\nfrom baton._component import Flow\n", project.module);
    write_tree(&entry, &[(&format!("{ENTRY}.py"), &entry_source)])?;

    let component = work.join("flow.wasm");
    let inputs = inputs_digest(&dir, &[&deps, &sdk, &entry])?;
    let recorded = work.join("flow.wasm.inputs");
    if component.is_file() && std::fs::read_to_string(&recorded).is_ok_and(|d| d == inputs) {
        eprintln!("{}: unchanged since its last build", dir.display());
        return Ok(component);
    }
    let partial = work.join("flow.wasm.partial");
    let mut command = Command::new(&tool.componentize_py);
    command
        .arg("-d")
        .arg(work.join("wit"))
        .args(["-w", "flow-component", "componentize"])
        .arg("-p")
        .arg(&dir)
        .arg("-p")
        .arg(&sdk)
        .arg("-p")
        .arg(&entry);
    if deps.is_dir() {
        command.arg("-p").arg(&deps);
    }
    command.arg(ENTRY).arg("-o").arg(&partial);
    // Its chatter goes where cargo's does: stdout carries the path alone.
    command.stdout(stderr_stdio()?);
    let status = command.status().context("starting componentize-py")?;
    if !status.success() {
        return Err(BuildFailed(dir.display().to_string()).into());
    }
    std::fs::rename(&partial, &component)
        .with_context(|| format!("writing {}", component.display()))?;
    std::fs::write(&recorded, inputs)?;
    Ok(component)
}

/// Where componentize-py is: `BATON_COMPONENTIZE_PY`, else a virtual
/// environment of its own under the Baton home, made on first use.
struct Toolchain {
    componentize_py: PathBuf,
    pip: PathBuf,
}

fn componentize_py() -> anyhow::Result<Toolchain> {
    if let Some(path) = std::env::var_os("BATON_COMPONENTIZE_PY") {
        let componentize_py = PathBuf::from(path);
        let pip = componentize_py.with_file_name("pip");
        return Ok(Toolchain { componentize_py, pip });
    }
    let version = COMPONENTIZE_PY.replace("==", "-");
    let venv = crate::baton_home().join("python").join(version);
    let toolchain =
        Toolchain { componentize_py: venv.join("bin/componentize-py"), pip: venv.join("bin/pip") };
    if toolchain.componentize_py.is_file() {
        return Ok(toolchain);
    }
    eprintln!("installing {COMPONENTIZE_PY} into {} (once)", venv.display());
    let made = Command::new("python3")
        .args(["-m", "venv", "--clear"])
        .arg(&venv)
        .status()
        .context("python3 (with its venv module) is needed to build Python flows")?;
    if !made.success() {
        bail!("`python3 -m venv {}` failed", venv.display());
    }
    let installed = Command::new(&toolchain.pip)
        .args(["install", "--quiet", "--disable-pip-version-check", COMPONENTIZE_PY])
        .stdout(stderr_stdio()?)
        .status()
        .context("running pip")?;
    if !installed.success() {
        // A half-made environment would be taken for a working one.
        let _ = std::fs::remove_dir_all(&venv);
        bail!("installing {COMPONENTIZE_PY} with pip failed (the messages above say why)");
    }
    Ok(toolchain)
}

/// Installs the project's dependencies into `deps` (emptied first, unless
/// it holds these requirements already), and refuses any that holds a
/// native extension, by name.
fn install_dependencies(
    tool: &Toolchain,
    dependencies: &[String],
    deps: &Path,
) -> anyhow::Result<()> {
    let requirements = dependencies.join("\n");
    let installed = deps.join(".requirements");
    if !dependencies.is_empty()
        && std::fs::read_to_string(&installed).is_ok_and(|r| r == requirements)
    {
        return Ok(());
    }
    if deps.exists() {
        std::fs::remove_dir_all(deps).with_context(|| format!("emptying {}", deps.display()))?;
    }
    if dependencies.is_empty() {
        return Ok(());
    }
    eprintln!("bundling {}", dependencies.join(", "));
    let status = Command::new(&tool.pip)
        .args(["install", "--quiet", "--disable-pip-version-check", "--no-compile", "--target"])
        .arg(deps)
        .args(dependencies)
        .stdout(stderr_stdio()?)
        .status()
        .context("running pip")?;
    if !status.success() {
        bail!("installing the project's dependencies with pip failed (the messages above say why)");
    }
    let native = native_extensions(deps)?;
    if native.is_empty() {
        std::fs::write(&installed, requirements)?;
    }
    if let Some((package, file)) = native.first_key_value() {
        let others = native.len() - 1;
        bail!(
            "dependency `{package}` is a native extension ({file}{}), which cannot run in the WebAssembly sandbox: a Python flow can bundle pure-Python packages only{}",
            if others > 0 { " and more" } else { "" },
            if others > 0 {
                format!(
                    " (also: {})",
                    native.keys().skip(1).cloned().collect::<Vec<_>>().join(", ")
                )
            } else {
                String::new()
            }
        );
    }
    Ok(())
}

/// Installed packages holding compiled code: package name → one such file.
fn native_extensions(deps: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let mut owners = BTreeMap::new();
    let mut recorded = std::collections::HashSet::new();
    // Which distribution installed which file: its `RECORD`.
    for entry in std::fs::read_dir(deps)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(distribution) = name.strip_suffix(".dist-info") else { continue };
        let package = distribution.split('-').next().unwrap_or(distribution).replace('_', "-");
        let record = std::fs::read_to_string(entry.path().join("RECORD")).unwrap_or_default();
        for file in record.lines().map(|line| line.split(',').next().unwrap_or_default()) {
            if is_native(file) {
                owners.entry(package.to_lowercase()).or_insert_with(|| file.to_owned());
                recorded.insert(file.to_owned());
            }
        }
    }
    // A compiled file no RECORD names is still refused.
    for file in files_under(deps)? {
        let relative = file.strip_prefix(deps).unwrap_or(&file).to_string_lossy().into_owned();
        if is_native(&relative) && !recorded.contains(&relative) {
            let top = relative.split('/').next().unwrap_or(&relative).to_owned();
            owners.entry(top).or_insert(relative);
        }
    }
    Ok(owners)
}

fn is_native(file: &str) -> bool {
    [".so", ".pyd", ".dylib", ".dll"].iter().any(|ext| file.ends_with(ext)) || file.contains(".so.")
}

/// Writes `files` into `dir`, leaving files that already hold the same
/// bytes untouched.
fn write_tree(dir: &Path, files: &[(&str, &str)]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, text) in files {
        let path = dir.join(name);
        if std::fs::read(&path).ok().as_deref() != Some(text.as_bytes()) {
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        }
    }
    Ok(())
}

/// The sha256 of everything a build reads: the toolchain's version, the
/// project's files (not hidden ones, nor caches) and `extra` trees.
fn inputs_digest(project: &Path, extra: &[&Path]) -> anyhow::Result<String> {
    let mut hasher = Sha256::new();
    hasher.update(COMPONENTIZE_PY.as_bytes());
    hasher.update(WIT.as_bytes());
    for root in std::iter::once(project).chain(extra.iter().copied()) {
        if !root.is_dir() {
            continue;
        }
        for file in files_under(root)? {
            let relative = file.strip_prefix(root).unwrap_or(&file);
            hasher.update(relative.to_string_lossy().as_bytes());
            hasher.update([0]);
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            hasher.update((bytes.len() as u64).to_le_bytes());
            hasher.update(&bytes);
        }
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Regular files under `root`, sorted, skipping hidden entries and
/// `__pycache__`.
fn files_under(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
        {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || name == "__pycache__" {
                continue;
            }
            let kind = entry.file_type()?;
            if kind.is_dir() {
                pending.push(entry.path());
            } else if kind.is_file() {
                files.push(entry.path());
            }
        }
    }
    files.sort();
    Ok(files)
}

/// This process's stderr, for a child's stdout.
fn stderr_stdio() -> anyhow::Result<Stdio> {
    Ok(Stdio::from(std::io::stderr().as_fd().try_clone_to_owned()?))
}
