//! The deployment files under `deploy/`, checked without a cluster or a
//! container engine: the Kubernetes manifests against Kubernetes' own
//! schema and against each other, the Compose file's wiring (two cores on
//! one database with one secret key, agents that know both), and every
//! flag and variable they give `baton` against the real binary's `--help`,
//! so that a renamed flag cannot leave them behind.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use baton_tests::{baton_binary, python_tools, repo_root};
use serde_json::Value;

/// The Kubernetes version the manifests are checked against, as the
/// kubernetes backend's Job and Secret are.
const KUBERNETES: &str = "1.33.0";

/// The image the Compose file runs cores and agents from unless told.
const COMPOSE_IMAGE: &str = "${BATON_IMAGE:-localhost/baton-runner:latest}";

fn deploy_dir() -> PathBuf {
    repo_root().join("deploy")
}

/// Every `deploy/kubernetes/*.yaml`, in name order.
fn manifests() -> Vec<PathBuf> {
    let dir = deploy_dir().join("kubernetes");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    files
}

/// The documents of a YAML file, as JSON. The tests have no YAML parser of
/// their own; PyYAML comes with kubernetes-validate into the Python tools'
/// environment.
fn yaml_documents(path: &Path) -> Vec<Value> {
    let python = python_tools().join("bin/python");
    assert!(python.exists(), "{} is missing: `cargo xtask setup` installs it", python.display());
    let output = Command::new(&python)
        .args([
            "-c",
            "import json, sys, yaml\n\
             with open(sys.argv[1], encoding='utf-8') as f:\n    \
                 json.dump(list(yaml.safe_load_all(f)), sys.stdout)",
        ])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{} is not YAML: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let documents: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    documents.into_iter().filter(|document| !document.is_null()).collect()
}

/// A list of strings (a command, a probe's test), or a failure naming
/// `what`.
fn strings(value: &Value, what: &str) -> Vec<String> {
    let Some(items) = value.as_array() else { panic!("{what} is not a list: {value}") };
    items
        .iter()
        .map(|item| match item.as_str() {
            Some(text) => text.to_owned(),
            None => panic!("{what}: {item} is not a string (quote it)"),
        })
        .collect()
}

/// The value given to `flag` in `args` (`--flag VALUE` or `--flag=VALUE`).
fn flag_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter().enumerate().find_map(|(at, arg)| {
        if arg == flag {
            args.get(at + 1).map(String::as_str)
        } else {
            arg.strip_prefix(flag).and_then(|rest| rest.strip_prefix('='))
        }
    })
}

/// The port of a `HOST:PORT` address.
fn port_of(address: &str) -> &str {
    address.rsplit_once(':').map_or("", |(_, port)| port)
}

fn kubernetes_validate() -> PathBuf {
    let validate = python_tools().join("bin/kubernetes-validate");
    assert!(
        validate.exists(),
        "{} is missing: `cargo xtask setup` installs it",
        validate.display()
    );
    validate
}

/// What `kubernetes-validate --strict` says of `files`, and whether they
/// passed.
fn validate(files: &[PathBuf]) -> (bool, String) {
    let output = Command::new(kubernetes_validate())
        .args(["--strict", "-k", KUBERNETES])
        .args(files)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), said)
}

/// A cluster takes what the manifests say and nothing else: the API server
/// drops a field it does not know, so a misspelt probe or limit would be
/// lost without a word. `--strict` refuses it here.
#[test]
fn every_kubernetes_manifest_passes_kubernetes_own_schema() {
    let files = manifests();
    assert!(!files.is_empty(), "deploy/kubernetes holds no manifest");
    let (passed, said) = validate(&files);
    assert!(passed, "{said}");
    let resources: usize = files.iter().map(|file| yaml_documents(file).len()).sum();
    for file in &files {
        assert!(said.contains(&format!("{} passed", file.display())), "{}: {said}", file.display());
    }
    assert_eq!(
        said.matches(" passed for resource ").count(),
        resources,
        "not every one of the {resources} resources was checked:\n{said}"
    );
    // The check can fail: a misspelt field is refused.
    let core = deploy_dir().join("kubernetes/core.yaml");
    let text = std::fs::read_to_string(&core).unwrap();
    assert!(text.contains("readinessProbe:"), "core.yaml has no readiness probe to misspell");
    let broken =
        std::env::temp_dir().join(format!("baton-broken-core-{}.yaml", std::process::id()));
    std::fs::write(&broken, text.replacen("readinessProbe:", "readynessProbe:", 1)).unwrap();
    let (passed, said) = validate(std::slice::from_ref(&broken));
    let _ = std::fs::remove_file(&broken);
    assert!(!passed, "a core Deployment with a misspelt probe passed:\n{said}");
}

/// Every resource of the manifests, with the file it is in.
fn kubernetes_resources() -> Vec<(String, Value)> {
    manifests()
        .iter()
        .flat_map(|file| {
            let name = file.file_name().unwrap_or_default().to_string_lossy().into_owned();
            yaml_documents(file).into_iter().map(move |resource| (name.clone(), resource))
        })
        .collect()
}

/// The containers of the workload `resource`, if it is one.
fn containers(resource: &Value) -> Vec<&Value> {
    let spec = &resource["spec"]["template"]["spec"];
    ["initContainers", "containers"]
        .iter()
        .filter_map(|field| spec[field].as_array())
        .flatten()
        .collect()
}

/// The container named `name` of the Deployment named `deployment`.
fn deployment_container<'a>(
    resources: &'a [(String, Value)],
    deployment: &str,
    name: &str,
) -> (&'a Value, &'a Value) {
    let Some((_, resource)) = resources
        .iter()
        .find(|(_, r)| r["kind"] == "Deployment" && r["metadata"]["name"] == deployment)
    else {
        panic!("no Deployment {deployment} in deploy/kubernetes")
    };
    let Some(container) = containers(resource).into_iter().find(|c| c["name"] == name) else {
        panic!("Deployment {deployment} has no container {name}")
    };
    (resource, container)
}

/// The manifests fit together: the agents' `--core` is the headless QUIC
/// Service, which selects the core pods and reaches their `--quic` port,
/// the HTTP Service reaches `--http`, and every Secret key a pod reads is
/// one the example Secret defines, so that the example filled in is all a
/// cluster needs.
#[test]
fn the_kubernetes_manifests_refer_to_what_they_define() {
    let resources = kubernetes_resources();
    let (core, core_container) = deployment_container(&resources, "baton-core", "core");
    let (agent, agent_container) = deployment_container(&resources, "baton-agent", "agent");
    assert_eq!(core["spec"]["replicas"], 2, "two cores, so that agents have one to fail over to");
    let core_args = strings(&core_container["args"], "the core's args");
    let agent_args = strings(&agent_container["args"], "the agent's args");
    let container_port = |name: &str| {
        let ports = core_container["ports"].as_array().cloned().unwrap_or_default();
        let Some(port) = ports.into_iter().find(|p| p["name"] == name) else {
            panic!("the core container has no port named {name}")
        };
        port
    };
    for (flag, name, protocol) in [("--http", "http", "TCP"), ("--quic", "quic", "UDP")] {
        let port = container_port(name);
        let given =
            flag_value(&core_args, flag).unwrap_or_else(|| panic!("the core has no {flag}"));
        assert_eq!(
            port["containerPort"].to_string(),
            port_of(given),
            "{flag} {given} vs port {name}"
        );
        assert_eq!(port["protocol"], protocol, "port {name}");
    }
    for probe in ["readinessProbe", "livenessProbe"] {
        let get = &core_container[probe]["httpGet"];
        assert_eq!(get["path"], "/api/health", "the core's {probe}");
        assert_eq!(get["port"], "http", "the core's {probe}");
    }

    // The agents dial NAME[.NAMESPACE...]:PORT, a headless Service of the
    // cores, so that the name resolves to every core pod.
    let dialled = flag_value(&agent_args, "--core").expect("the agent has no --core");
    let (host, port) = dialled.rsplit_once(':').expect("--core is HOST:PORT");
    let mut parts = host.split('.');
    let service = parts.next().unwrap_or_default();
    let namespace =
        parts.next().or_else(|| agent["metadata"]["namespace"].as_str()).unwrap_or_default();
    let Some((_, quic)) = resources.iter().find(|(_, r)| {
        r["kind"] == "Service"
            && r["metadata"]["name"] == service
            && r["metadata"]["namespace"] == namespace
    }) else {
        panic!("the agents dial {dialled}, but there is no Service {service} in {namespace}")
    };
    assert_eq!(quic["spec"]["clusterIP"], "None", "{service} must be headless to name every core");
    let labels = &core["spec"]["template"]["metadata"]["labels"];
    let selects_cores = |selector: &Value| {
        selector.as_object().is_some_and(|wanted| {
            !wanted.is_empty() && wanted.iter().all(|(key, value)| &labels[key] == value)
        })
    };
    assert!(selects_cores(&quic["spec"]["selector"]), "{service} does not select the core pods");
    let quic_ports = quic["spec"]["ports"].as_array().cloned().unwrap_or_default();
    assert!(
        quic_ports.iter().any(|p| p["port"].as_u64().is_some_and(|n| n.to_string() == port)
            && p["protocol"] == "UDP"
            && p["targetPort"] == "quic"),
        "{service} has no UDP port {port} to the cores' quic port: {quic_ports:?}"
    );
    let http_service = resources.iter().any(|(_, r)| {
        r["kind"] == "Service"
            && selects_cores(&r["spec"]["selector"])
            && r["spec"]["ports"]
                .as_array()
                .is_some_and(|ports| ports.iter().any(|p| p["targetPort"] == "http"))
    });
    assert!(http_service, "no Service reaches the cores' API");

    // Every Secret key read is defined by the example.
    let defined: BTreeSet<(String, String)> = resources
        .iter()
        .filter(|(file, r)| file == "secret.example.yaml" && r["kind"] == "Secret")
        .flat_map(|(_, secret)| {
            let name = secret["metadata"]["name"].as_str().unwrap_or_default().to_owned();
            let keys = secret["stringData"].as_object().cloned().unwrap_or_default();
            keys.into_iter().map(move |(key, _)| (name.clone(), key))
        })
        .collect();
    let mut read = 0;
    for container in [core_container, agent_container] {
        for variable in container["env"].as_array().cloned().unwrap_or_default() {
            let reference = &variable["valueFrom"]["secretKeyRef"];
            if reference.is_null() {
                continue;
            }
            let wanted = (
                reference["name"].as_str().unwrap_or_default().to_owned(),
                reference["key"].as_str().unwrap_or_default().to_owned(),
            );
            assert!(defined.contains(&wanted), "{variable} reads {wanted:?}; defined: {defined:?}");
            read += 1;
        }
    }
    assert!(read >= 4, "the database URL, secret key, API token and agent token come from Secrets");
}

/// The Compose file's services by name.
fn compose_services() -> BTreeMap<String, Value> {
    let path = deploy_dir().join("compose.yaml");
    let documents = yaml_documents(&path);
    assert_eq!(documents.len(), 1, "compose.yaml is one document");
    let Some(services) = documents[0]["services"].as_object() else {
        panic!("compose.yaml has no services")
    };
    services.clone().into_iter().collect()
}

/// A service's environment (a map, or a list of `KEY=VALUE`).
fn environment(service: &Value) -> BTreeMap<String, String> {
    match &service["environment"] {
        Value::Object(map) => map
            .iter()
            .map(|(key, value)| {
                let text = value.as_str().map_or_else(|| value.to_string(), str::to_owned);
                (key.clone(), text)
            })
            .collect(),
        Value::Array(list) => list
            .iter()
            .filter_map(Value::as_str)
            .map(|entry| match entry.split_once('=') {
                Some((key, value)) => (key.to_owned(), value.to_owned()),
                None => (entry.to_owned(), String::new()),
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// The services whose command begins with `subcommand` (`server start`).
fn running(services: &BTreeMap<String, Value>, subcommand: &[&str]) -> Vec<String> {
    services
        .iter()
        .filter(|(_, service)| {
            service["command"].as_array().is_some_and(|command| {
                command.len() >= subcommand.len()
                    && command.iter().zip(subcommand).all(|(word, wanted)| word == wanted)
            })
        })
        .map(|(name, _)| name.clone())
        .collect()
}

/// The Compose file is a team's Baton: PostgreSQL, two cores that share it
/// (the same database URL, and the same required secret key, without which
/// they could not share the sealed secrets and the agents' CA), each
/// publishing its own API and QUIC ports, and agents whose `--core` names
/// both cores at their QUIC port, each with a data volume of its own.
#[test]
fn the_compose_file_runs_two_cores_on_one_database_and_agents_that_know_both() {
    let services = compose_services();
    let databases: Vec<&String> = services
        .iter()
        .filter(|(_, s)| s["image"].as_str().is_some_and(|image| image.starts_with("postgres:")))
        .map(|(name, _)| name)
        .collect();
    assert_eq!(databases.len(), 1, "one service of the official postgres image: {databases:?}");
    let postgres = databases[0];
    let ready = strings(&services[postgres]["healthcheck"]["test"], "postgres's healthcheck");
    assert!(ready.iter().any(|word| word == "pg_isready"), "postgres's healthcheck: {ready:?}");

    let cores = running(&services, &["server", "start"]);
    let agents = running(&services, &["agent", "start"]);
    assert_eq!(cores.len(), 2, "two cores: {cores:?}");
    assert_eq!(agents.len(), 2, "two agents: {agents:?}");
    for name in cores.iter().chain(&agents) {
        assert_eq!(services[name]["image"], COMPOSE_IMAGE, "{name}'s image");
    }

    for (variable, required) in [
        ("BATON_DATABASE_URL", None),
        ("BATON_SECRET_KEY", Some("${BATON_SECRET_KEY:?")),
        // Empty, it would let the core listen beyond loopback with a
        // token anyone can send.
        ("BATON_API_TOKEN", Some("${BATON_API_TOKEN:?")),
    ] {
        let values: BTreeSet<String> = cores
            .iter()
            .map(|core| {
                let env = environment(&services[core]);
                env.get(variable)
                    .cloned()
                    .unwrap_or_else(|| panic!("core {core} has no {variable}"))
            })
            .collect();
        assert_eq!(values.len(), 1, "the cores differ in {variable}: {values:?}");
        let value = values.first().unwrap();
        if let Some(required) = required {
            assert!(value.starts_with(required), "{variable} must be required from .env: {value}");
        }
    }
    let url = environment(&services[&cores[0]])["BATON_DATABASE_URL"].clone();
    assert!(
        url.starts_with("postgres://") && url.contains(&format!("@{postgres}:")),
        "the cores' database is not the {postgres} service: {url}"
    );

    let mut published = BTreeSet::new();
    let mut quic_port = BTreeMap::new();
    for core in &cores {
        let service = &services[core];
        let command = strings(&service["command"], &format!("{core}'s command"));
        assert_eq!(
            service["depends_on"][postgres.as_str()]["condition"],
            "service_healthy",
            "{core} starts before the database is ready"
        );
        let ports = strings(&service["ports"], &format!("{core}'s ports"));
        for (flag, suffix) in [("--http", ""), ("--quic", "/udp")] {
            let given =
                flag_value(&command, flag).unwrap_or_else(|| panic!("{core} has no {flag}"));
            let target = format!(":{}{suffix}", port_of(given));
            assert!(
                ports.iter().any(|port| port.ends_with(&target)),
                "{core} does not publish {flag} {given}: {ports:?}"
            );
        }
        for port in &ports {
            let host = port.split_once(':').map_or(port.as_str(), |(host, _)| host);
            let protocol = port.rsplit_once('/').map_or("tcp", |(_, protocol)| protocol);
            assert!(
                published.insert(format!("{host}/{protocol}")),
                "port {port} is published twice"
            );
        }
        let quic = flag_value(&command, "--quic").unwrap_or_default();
        quic_port.insert(core.clone(), port_of(quic).to_owned());
    }

    let mut agent_volumes = BTreeSet::new();
    for agent in &agents {
        let service = &services[agent];
        let command = strings(&service["command"], &format!("{agent}'s command"));
        let dialled =
            flag_value(&command, "--core").unwrap_or_else(|| panic!("{agent}: no --core"));
        let dialled: BTreeSet<(String, String)> = dialled
            .split(',')
            .map(|entry| {
                let (host, port) = entry.rsplit_once(':').unwrap_or((entry, ""));
                (host.to_owned(), port.to_owned())
            })
            .collect();
        let expected: BTreeSet<(String, String)> =
            quic_port.iter().map(|(core, port)| (core.clone(), port.clone())).collect();
        assert_eq!(dialled, expected, "{agent}'s --core is not every core at its QUIC port");
        assert!(
            environment(service).contains_key("BATON_AGENT_TOKEN")
                || flag_value(&command, "--token").is_some(),
            "{agent} is given no token"
        );
        let data_dir = flag_value(&command, "--data-dir")
            .unwrap_or_else(|| panic!("{agent}: no --data-dir, so its id would not outlive it"));
        let volumes = strings(&service["volumes"], &format!("{agent}'s volumes"));
        let Some(volume) = volumes.iter().find_map(|v| {
            v.split_once(':').filter(|(_, inside)| *inside == data_dir).map(|(volume, _)| volume)
        }) else {
            panic!("{agent}'s --data-dir {data_dir} is not on a volume: {volumes:?}")
        };
        assert!(
            agent_volumes.insert(volume.to_owned()),
            "{agent} shares volume {volume}: two agents with one id"
        );
    }
}

/// A `baton` command line in a deployment file: where it is, its
/// arguments after `baton`, and the variables given with it.
struct Invocation {
    place: String,
    args: Vec<String>,
    env: Vec<String>,
}

/// Whether `binary` (a command's first word) is `baton`.
fn is_baton(binary: &str) -> bool {
    binary == "baton" || binary.ends_with("/baton")
}

/// The `baton` command lines of the Compose file: each service of Baton's
/// image (whose entrypoint is `baton`), and healthchecks that run it.
fn compose_invocations() -> Vec<Invocation> {
    let mut found = Vec::new();
    for (name, service) in compose_services() {
        if service["image"] != COMPOSE_IMAGE {
            continue;
        }
        let env = environment(&service).into_keys().collect();
        let command = strings(&service["command"], &format!("{name}'s command"));
        found.push(Invocation { place: format!("compose.yaml: {name}"), args: command, env });
        let test = &service["healthcheck"]["test"];
        if !test.is_null() {
            let test = strings(test, &format!("{name}'s healthcheck"));
            if let [kind, binary, args @ ..] = test.as_slice()
                && kind == "CMD"
                && is_baton(binary)
            {
                found.push(Invocation {
                    place: format!("compose.yaml: {name}'s healthcheck"),
                    args: args.to_vec(),
                    env: Vec::new(),
                });
            }
        }
    }
    found
}

/// The `baton` command lines of the manifests: containers of the runner
/// image (whose entrypoint is `baton`) or whose command is `baton`, and
/// exec probes that run it.
fn kubernetes_invocations() -> Vec<Invocation> {
    let mut found = Vec::new();
    for (file, resource) in kubernetes_resources() {
        for container in containers(&resource) {
            let place = format!("{file}: {}", container["name"].as_str().unwrap_or_default());
            let args = if container["args"].is_null() {
                Vec::new()
            } else {
                strings(&container["args"], &format!("{place}'s args"))
            };
            let command = if container["command"].is_null() {
                Vec::new()
            } else {
                strings(&container["command"], &format!("{place}'s command"))
            };
            let runs_baton = match command.split_first() {
                Some((binary, before)) if is_baton(binary) => {
                    Some([before, args.as_slice()].concat())
                }
                Some(_) => None,
                None => container["image"]
                    .as_str()
                    .is_some_and(|image| image.contains("baton-runner"))
                    .then(|| args.clone()),
            };
            if let Some(args) = runs_baton {
                let env = container["env"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|variable| variable["name"].as_str().map(str::to_owned))
                    .collect();
                found.push(Invocation { place: place.clone(), args, env });
            }
            for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
                let exec = &container[probe]["exec"]["command"];
                if exec.is_null() {
                    continue;
                }
                let exec = strings(exec, &format!("{place}'s {probe}"));
                if let Some((binary, args)) = exec.split_first()
                    && is_baton(binary)
                {
                    let place = format!("{place}'s {probe}");
                    found.push(Invocation { place, args: args.to_vec(), env: Vec::new() });
                }
            }
        }
    }
    found
}

/// Whether `help` lists `flag` (`--core`, not a longer `--core-x`).
fn mentions_flag(help: &str, flag: &str) -> bool {
    help.match_indices(flag).any(|(at, _)| {
        let before = help[..at].chars().next_back();
        let after = help[at + flag.len()..].chars().next();
        before.is_none_or(|c| c.is_whitespace() || c == ',' || c == '[')
            && after.is_none_or(|c| !(c.is_alphanumeric() || c == '-' || c == '_'))
    })
}

/// `baton SUBCOMMAND... --help`, its words separated by single spaces (so
/// that a wrapped line cannot split `[env: NAME]`); `None` if `baton` has
/// no such subcommand.
fn help_of(subcommand: &[String]) -> Option<String> {
    let output = Command::new(baton_binary()).args(subcommand).arg("--help").output().unwrap();
    output.status.success().then(|| {
        String::from_utf8_lossy(&output.stdout).split_whitespace().collect::<Vec<_>>().join(" ")
    })
}

/// The deployment files call `baton` with flags and variables that the
/// real binary takes: each subcommand exists, each `--flag` is in its
/// `--help`, and each `BATON_*` variable given to a core or an agent is
/// one its flags read (`[env: NAME]`), so that a renamed flag fails here
/// rather than in a team's cluster.
#[test]
fn every_flag_the_deployment_files_give_baton_is_one_it_takes() {
    let compose = compose_invocations();
    let kubernetes = kubernetes_invocations();
    for (file, found) in [("compose.yaml", &compose), ("deploy/kubernetes", &kubernetes)] {
        for subcommand in [["server", "start"], ["agent", "start"]] {
            assert!(
                found.iter().any(|i| i.args.starts_with(&subcommand.map(str::to_owned))),
                "{file} runs no `baton {}`",
                subcommand.join(" ")
            );
        }
    }
    let mut helps: BTreeMap<Vec<String>, Option<String>> = BTreeMap::new();
    let mut refused = Vec::new();
    for invocation in compose.iter().chain(&kubernetes) {
        let subcommand: Vec<String> =
            invocation.args.iter().take_while(|arg| !arg.starts_with('-')).cloned().collect();
        let help = helps.entry(subcommand.clone()).or_insert_with(|| help_of(&subcommand));
        let Some(help) = help else {
            refused.push(format!(
                "{}: `baton {}` is no command",
                invocation.place,
                subcommand.join(" ")
            ));
            continue;
        };
        for arg in invocation.args.iter().filter(|arg| arg.starts_with("--")) {
            let flag = arg.split_once('=').map_or(arg.as_str(), |(flag, _)| flag);
            if !mentions_flag(help, flag) {
                refused.push(format!(
                    "{}: `baton {}` takes no {flag}",
                    invocation.place,
                    subcommand.join(" ")
                ));
            }
        }
        for variable in invocation.env.iter().filter(|name| name.starts_with("BATON_")) {
            if !help.contains(&format!("[env: {variable}")) {
                refused.push(format!(
                    "{}: `baton {}` reads no {variable}",
                    invocation.place,
                    subcommand.join(" ")
                ));
            }
        }
    }
    assert!(refused.is_empty(), "{}", refused.join("\n"));
    // The check can fail: a flag `baton server start` lacks is seen as such.
    let server = helps.get(&vec!["server".to_owned(), "start".to_owned()]).cloned().flatten();
    let server = server.expect("`baton server start --help` was read");
    assert!(mentions_flag(&server, "--secret-key") && server.contains("[env: BATON_SECRET_KEY"));
    assert!(!mentions_flag(&server, "--secret") && !mentions_flag(&server, "--no-such-flag"));
}
