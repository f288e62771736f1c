// The command table. Each row: name, one-line summary, the help text, how to set up its options,
// and what to run. `nodectl --help` lists the rows in this order.
#include "cli/cli.hpp"
#include "core/runner.hpp"

#include <iostream>

namespace nodectl::cli {

int run_version(CLI::App& app, Context& ctx);
void configure_profile(CLI::App& app, Context& ctx);
int run_profile(CLI::App& app, Context& ctx);
void configure_join(CLI::App& app, Context& ctx);
int run_join(CLI::App& app, Context& ctx);
void configure_reset(CLI::App& app, Context& ctx);
int run_reset(CLI::App& app, Context& ctx);
void configure_runtime(CLI::App& app, Context& ctx);
int run_runtime(CLI::App& app, Context& ctx);
void configure_bundle(CLI::App& app, Context& ctx);
int run_bundle(CLI::App& app, Context& ctx);
void configure_kubeconfig(CLI::App& app, Context& ctx);
void configure_firstboot(CLI::App& app, Context& ctx);
int run_firstboot(CLI::App& app, Context& ctx);
void configure_status(CLI::App& app, Context& ctx);
int run_status(CLI::App& app, Context& ctx);
void configure_cloud_init(CLI::App& app, Context& ctx);
int run_cloud_init(CLI::App& app, Context& ctx);
void configure_usb(CLI::App& app, Context& ctx);
int run_usb(CLI::App& app, Context& ctx);
void configure_backup(CLI::App& app, Context& ctx);
int run_backup(CLI::App& app, Context& ctx);
void configure_image(CLI::App& app, Context& ctx);
int run_image(CLI::App& app, Context& ctx);
void configure_stack(CLI::App& app, Context& ctx);
int run_stack(CLI::App& app, Context& ctx);
void configure_local(CLI::App& app, Context& ctx);
int run_local(CLI::App& app, Context& ctx);

namespace {

void configure_none(CLI::App&, Context&) {}

void configure_apply(CLI::App& app, Context& ctx) {
    add_host_options(app, ctx);
    app.add_flag("--dry-run,-n", ctx.host.dry_run, "Show the plan and change nothing (the same as `nodectl plan`)");
}

int run_apply(CLI::App& app, Context& ctx) {
    return run_on_hosts(app, ctx, static_cast<int>(ctx.host.dry_run ? RunMode::plan : RunMode::apply));
}

void configure_hosts(CLI::App& app, Context& ctx) {
    add_host_options(app, ctx);
}

int run_plan(CLI::App& app, Context& ctx) {
    return run_on_hosts(app, ctx, static_cast<int>(RunMode::plan));
}

int run_check(CLI::App& app, Context& ctx) {
    return run_on_hosts(app, ctx, static_cast<int>(RunMode::check));
}

const CommandSpec k_commands[] = {
    {"apply", "Make hosts match a profile",
     "Connects to each host (over SSH, or --local), probes every step of the profile, and changes what differs.\n"
     "Hosts run in parallel (--parallel), steps in order. A re-run on a converged host changes nothing.\n"
     "Examples:\n"
     "  nodectl apply -p profiles/example.toml root@web1 admin@web2:2222 --sudo nopasswd\n"
     "  nodectl apply -p site.toml -i inventory.toml --dry-run\n"
     "  nodectl apply -p site.toml --local",
     &configure_apply, &run_apply},
    {"plan", "Show what apply would change, per host, with diffs (changes nothing)",
     "The same as `nodectl apply --dry-run`: probes run, nothing on any host changes.\n"
     "Example: nodectl plan -p site.toml -i inventory.toml",
     &configure_hosts, &run_plan},
    {"check", "Audit hosts against a profile, control by control; exit 7 when a control fails",
     "Evaluates every control of the profile on each host (in parallel, read-only) and prints\n"
     "PASS / FAIL / N/A per control with the value observed on the host. N/A means the control cannot\n"
     "work where the host runs (for example kernel auditing inside a container); it is never a pass.\n"
     "Steps without their own controls count as one control: the host matches what the step would make.\n"
     "Exit status: 0 all passed (or n/a), 7 a control failed, 4/5 hosts unreachable; fit for monitoring.\n"
     "Examples:\n"
     "  nodectl check -p profiles/hardened.toml admin@198.18.0.2 --sudo nopasswd\n"
     "  nodectl check -p site.toml -i inventory.toml --json",
     &configure_hosts, &run_check},
    {"profile", "Validate profiles and list the keys they take",
     "  nodectl profile validate FILE   check a profile (and what it includes); errors as file:line:col\n"
     "  nodectl profile keys            every key: name, type, default, meaning",
     &configure_profile, &run_profile},
    {"bundle", "Make, verify and extract offline bundles (k3s, .debs, images, profile in one file)",
     "  nodectl bundle create -p PROFILE --out FILE [--k3s-dir DIR] [--image OCI_ARCHIVE]... [--packages P,...|--no-packages]\n"
     "  nodectl bundle verify FILE [--json]     every entry against manifest.json, in one pass\n"
     "  nodectl bundle extract FILE DIR         verify while extracting; DIR appears only when all matched\n"
     "create downloads the dependency closure of the packages with this machine's apt (as if nothing were\n"
     "installed) and adds debs/Packages, so a node installs with `deb [trusted=yes] file:/DIR/debs ./`.\n"
     "Exit status: 0 ok, 8 the file is not an intact bundle (the message names the entry), 3 invalid\n"
     "profile, 2 usage, 1 other errors (apt, files).\n"
     "Examples:\n"
     "  nodectl bundle create -p site.toml --k3s-dir k3s-v1.30/ --out site.bundle\n"
     "  nodectl bundle verify site.bundle",
     &configure_bundle, &run_bundle},
    {"kubeconfig", "Fetch a k3s server's admin kubeconfig, ready for kubectl on this machine",
     "Reads /etc/rancher/k3s/k3s.yaml from HOST over SSH (as root, or through --sudo). k3s points it at\n"
     "https://127.0.0.1:6443 and names everything \"default\"; nodectl points it at HOST's address\n"
     "(or --server-address) on the same port and names cluster, user and context after HOST (or --context).\n"
     "It holds the cluster's admin key: files are written 0600, atomically, and it is never logged.\n"
     "  (no option)   print it on stdout\n"
     "  --out FILE    write it to FILE\n"
     "  --merge       merge it into --kubeconfig FILE (default: $KUBECONFIG's first file, else ~/.kube/config),\n"
     "                replacing entries of the same name, keeping all others, and making it the current\n"
     "                context; the previous file is kept as FILE.bak\n"
     "Exit status: 0 done, 2 usage, 5 the host gave no kubeconfig (unreachable, k3s not running, not a\n"
     "kubeconfig), 1 the local file could not be read or written.\n"
     "Examples:\n"
     "  nodectl kubeconfig root@198.18.0.2 --merge && kubectl get nodes\n"
     "  nodectl kubeconfig admin@198.18.0.2 --sudo nopasswd --context lab --out lab.yaml\n"
     "  nodectl kubeconfig -i inventory.toml server1 --server-address k3s.example.org --merge",
     &configure_kubeconfig, &run_kubeconfig},
    {"version", "Print the version and the libraries built in", "", &configure_none, &run_version},
    {"join", "Join nodes to a k3s server as agents, over SSH",
     "Reads the server's k3s version and its secure join token (K10<CA hash>::..., so agents pin the\n"
     "server's CA) over SSH, checks from each node that the server's API port answers and that the node\n"
     "belongs to no other cluster, then installs on each node, in parallel: the profile's other sections\n"
     "(runtime, hardening), the same k3s release as the server, config.yaml with server and token (0600)\n"
     "and k3s-agent.service; and waits until the server reports each node Ready. A joined node is a no-op.\n"
     "Examples:\n"
     "  nodectl join root@198.18.0.3 root@198.18.0.4 --server root@198.18.0.2 -p profiles/hardened.toml\n"
     "  nodectl join -i workers.toml --server admin@198.18.0.2 --sudo nopasswd --dry-run",
     &configure_join, &run_join},
    {"reset", "Remove k3s from hosts (--k3s)",
     "Stops k3s, kills its pods, unmounts and removes its interfaces, and deletes the binary and links,\n"
     "/etc/rancher/k3s, /var/lib/rancher/k3s and kubelet data (like k3s-uninstall.sh). Irreversible:\n"
     "try --dry-run first.\n"
     "Example: nodectl reset --k3s root@198.18.0.3 --dry-run",
     &configure_reset, &run_reset},
    {"runtime", "Show the containerd configuration a profile gives this machine",
     "  nodectl runtime config -p PROFILE   print /etc/containerd/config.toml as apply would write it here\n"
     "                                      (the cgroup driver \"auto\" is detected on this machine)",
     &configure_runtime, &run_runtime},
    {"firstboot", "Provision this machine at first boot, once, resumably, with a report",
     "Run by nodectl-firstboot.service (`nodectl firstboot install`). Finds the configuration in this order and\n"
     "says which it used: --config FILE; `nodectl.config=PATH` on the kernel command line; a filesystem labelled\n"
     "NODECTL (a USB stick, mounted read-only) holding nodectl.toml and optionally bundle/NAME.bundle;\n"
     "/etc/nodectl/profile.toml (written by cloud-init, see `nodectl cloud-init render`).\n"
     "Then runs the same steps as `nodectl apply --local`, with the journal: a run killed or cut off by a power\n"
     "loss resumes where it stopped. Status in /var/lib/nodectl/firstboot.json (`nodectl status`), a report on the\n"
     "stick (nodectl-report.txt) when it is writable, and /var/lib/nodectl/firstboot.done at the end: from then on\n"
     "it does nothing (no stick is even looked at) unless --force.\n"
     "With a trusted key installed (`install --trust KEY.pub`) the config must carry CONFIG.sig, an Ed25519\n"
     "signature (`nodectl firstboot sign --key KEY FILE`, or `openssl pkeyutl -sign -rawin -inkey KEY -in FILE\n"
     "-out FILE.sig`). A bad profile (file:line:col), a bundle failing verification, a missing or bad signature:\n"
     "reported on the console and in the status, and nothing changes.\n"
     "  nodectl firstboot install [--root DIR] [--trust KEY.pub]   unit + binary into this system or an image\n"
     "  nodectl firstboot sign --key KEY.pem FILE                  write FILE.sig\n"
     "Exit status: 0 done (or done before), 3 bad input (nothing changed), 5 a step failed (see the status).\n"
     "Examples:\n"
     "  nodectl firstboot install --root /srv/golden-rootfs --trust fleet.pub\n"
     "  nodectl firstboot --config /root/site.toml --bundle /root/site.bundle",
     &configure_firstboot, &run_firstboot},
    {"status", "Say whether first boot is done, running, failed or not started (exit code tells)",
     "Reads /var/lib/nodectl/firstboot.json and prints the report: each step's result and time, and the error.\n"
     "--wait waits (at most --timeout seconds) until first boot is done or failed.\n"
     "Exit status: 0 done, 10 running (or interrupted: it resumes at the next start of the service),\n"
     "11 failed, 12 not started.\n"
     "Examples:\n"
     "  nodectl status\n"
     "  ssh root@node nodectl status --wait --timeout 900 && echo provisioned",
     &configure_status, &run_status},
    {"cloud-init", "Render #cloud-config user-data that provisions a machine with a profile (render)",
     "  nodectl cloud-init render -p PROFILE (--binary-url URL --binary-sha256 HEX | --binary-preinstalled)\n"
     "                            [--inline-secrets] [--signature FILE]\n"
     "The user-data writes the profile (includes merged) to /etc/nodectl/profile.toml (0600), downloads nodectl\n"
     "and refuses it unless its sha256 matches, installs it, and runs `nodectl firstboot` from runcmd, so\n"
     "`cloud-init status` reports the result. Secret files the profile references ({ file = ... }, sensitive\n"
     "sources) stay references, listed in a comment, unless --inline-secrets; sensitive inline content is refused\n"
     "without --inline-secrets. The output passes `cloud-init schema -c FILE`.\n"
     "Example: nodectl cloud-init render -p site.toml --binary-url http://198.18.80.1:8080/nodectl \\\n"
     "           --binary-sha256 $(sha256sum nodectl | cut -d' ' -f1) > user-data",
     &configure_cloud_init, &run_cloud_init},
    {"usb", "Prepare a NODECTL USB stick (or stick image) that provisions machines (prepare)",
     "  nodectl usb prepare (--image FILE [--size 2G] | --device /dev/sdX [--yes]) -p PROFILE [--bundle B]\n"
     "Writes a FAT filesystem labelled NODECTL (mkfs.vfat; files copied with mtools, nothing is mounted) holding\n"
     "the nodectl binary, nodectl.toml, bundle/ and README.txt for the technician. --device ERASES the device:\n"
     "it refuses a device (or a partition of it) that is mounted or holds the running system, and asks for\n"
     "confirmation unless --yes.\n"
     "Examples:\n"
     "  nodectl usb prepare --image stick.img --size 2G -p site.toml --bundle site.bundle --binary build/static/nodectl\n"
     "  nodectl usb prepare --device /dev/sdb -p site.toml --bundle site.bundle",
     &configure_usb, &run_usb},
    {"backup", "Back up databases and files to directories (NFS) and S3; verify, restore, prune",
     "Runs on the node itself (as root, usually from nodectl-backup.timer) with the profile's [backup]\n"
     "(default /etc/nodectl/profile.toml, -p to change). One run dumps every database (mariadb-dump\n"
     "--single-transaction --routines --events --triggers, from the replica when one is set) and every\n"
     "file tree into one tar+zstd stream, optionally AES-256-GCM encrypted, written to all targets at once:\n"
     "a directory gets a hidden temp file renamed when complete, S3 a multipart upload aborted on failure.\n"
     "  nodectl backup run [--target NAME]...   back up now, then apply each target's retention\n"
     "  nodectl backup list [--target NAME]     archives per target (--json)\n"
     "  nodectl backup verify ID                read the archive, check every entry against manifest.json\n"
     "  nodectl backup restore ID --db NAME [--into NEW | --force]   into the live server (verified first)\n"
     "  nodectl backup restore ID --files --to DIR                   file trees into DIR (appears when done)\n"
     "  nodectl backup prune [--dry-run]        delete what keep_last/daily/weekly/monthly do not keep\n"
     "Exit status: 0 ok; 4 some targets failed (or a post hook); 5 every target failed or a source/pre hook\n"
     "failed (no archive written); 8 the archive is damaged (the message names the entry); 3 invalid\n"
     "profile or wrong encryption key; 2 usage; 1 other errors.\n"
     "Examples:\n"
     "  nodectl backup run\n"
     "  nodectl backup verify web1-20261201T020000Z\n"
     "  nodectl backup restore web1-20261201T020000Z --db shop --into shop_restored\n"
     "  nodectl backup prune --dry-run",
     &configure_backup, &run_backup},
    {"image", "Build reproducible OCI images from recipes (images/NAME/recipe.toml), without a daemon",
     "  nodectl image build NAME... | --all [--recipes images/] [--out build/images] [--arg NAME=VALUE]...\n"
     "        [--secret NAME=FILE]... [--compression gzip|zstd] [--import containerd[=SOCKET] | k3s]\n"
     "  nodectl image check [NAME...]   parse and check the recipes only; errors as file:line:col and the key\n"
     "  nodectl image keys              every recipe key, its type, default and meaning\n"
     "A base recipe (no `base`) becomes a Debian rootfs made by mmdebstrap and the one layer its images\n"
     "share; each image adds one layer: what its packages, users, files and runs changed (whiteouts for\n"
     "removals). Layers are sorted, owned numerically, dated at most SOURCE_DATE_EPOCH (default: the suite's\n"
     "Release date), gzip without name or time: the same inputs give the same digests. Output: OUT/NAME/\n"
     "(OCI layout) and OUT/NAME.oci.tar (for `ctr images import` and k3s), reference\n"
     "localhost/nodectl/NAME:latest. A layer is reused from the cache when its recipe, files, arguments and\n"
     "the package versions apt resolves now are unchanged. Secrets are mounted at /run/secrets/NAME only\n"
     "while the runs that name them execute; they never reach a layer. Needs root. Progress goes to stderr.\n"
     "Exit status: 0 built, 2 usage, 3 a recipe is invalid (nothing built), 1 a build step failed.\n"
     "Examples:\n"
     "  nodectl image build --all\n"
     "  nodectl image build magento --arg project_dir=$PWD/shop --secret composer_auth=auth.json\n"
     "  nodectl image build redis --import containerd=/run/containerd/containerd.sock",
     &configure_image, &run_image},
    {"stack",
     "Render the Magento stack of a profile's [[stack.sites]] as Kubernetes manifests (render); its state on k3s (status)",
     "  nodectl stack render -p PROFILE [--site NAME] [--out DIR [--placeholders]]\n"
     "  nodectl stack status [-p PROFILE] [-i INVENTORY | HOST] [--json]\n"
     "Each site becomes one file of Kubernetes v1.32 objects, nodectl-NAME.yaml: its Namespace, Secrets,\n"
     "ConfigMaps, MariaDB master and replica StatefulSets (local-path volumes), Redis with AUTH, Varnish,\n"
     "Magento with probes, HorizontalPodAutoscaler and PodDisruptionBudget, Ingress (class traefik, TLS) with\n"
     "an HTTP-to-HTTPS redirect Middleware, NetworkPolicies (deny by default) and the backup CronJob.\n"
     "No node is needed. Without --out the manifests go to stdout with every secret value replaced by\n"
     "NODECTL-PLACEHOLDER-NOT-A-SECRET (and the Secret annotated so): secrets are never printed. With --out,\n"
     "the secret references of the profile are read and DIR/nodectl-NAME.yaml is written 0600, atomically;\n"
     "a missing secret refuses the site (nothing is written for it) unless --placeholders.\n"
     "The output is deterministic: the same profile and secrets give the same bytes. docs/stack.md says\n"
     "what the manifests contain and what is verified offline and what only a real k3s can show.\n"
     "Exit status: 0 rendered, 2 usage (unknown --site), 3 invalid profile or missing secret, 1 write error.\n"
     "status runs `k3s kubectl get pods,hpa,ingress -A -o json` on the k3s server node (SSH, read-only) and\n"
     "prints per site: pods ready/total and restarts, each autoscaler's current/desired/max replicas, the\n"
     "ingress hosts. Exit status: 0 every site ready, 6 a site is not ready (or one of -p is missing),\n"
     "5 the server cannot be asked or answers nonsense, 2 usage, 3 invalid profile.\n"
     "Examples:\n"
     "  nodectl stack render -p profiles/stack.toml | less\n"
     "  nodectl stack status -p profiles/stack.toml -i inventory.toml --json\n"
     "  nodectl stack render -p profiles/stack.toml --site shop --out /root/manifests",
     &configure_stack, &run_stack},
    {"local", "Throw-away Debian nodes on this machine (systemd-nspawn, systemd as PID 1), ready for apply",
     "  nodectl local up NAME [--nodes N] [--suite bookworm|trixie|bullseye] [--subnet CIDR] [--memory M]\n"
     "                        [--cpus C] [--publish [ADDR:]HPORT:NPORT]... [--bind SRC[:DST]]... [--profile P]\n"
     "                        [--images NAME.oci.tar]... [--rootfs DIR] [--dry-run]\n"
     "  nodectl local load NAME NAME.oci.tar...   (images from `nodectl image build` into every node's runtime)\n"
     "  nodectl local down NAME | list | status NAME | ssh NAME [NODE] [COMMAND...] | inventory NAME\n"
     "  nodectl local rootfs [--suite S]   (build the cached root filesystem ahead of up; prints its path)\n"
     "up boots N containers NAME-1..N with systemd as PID 1, each on its own overlay of one Debian root filesystem\n"
     "(made once with mmdebstrap from this host's Debian mirror, cached in /var/cache/nodectl/local by release and\n"
     "package set; --rootfs or\n"
     "$NODECTL_LOCAL_ROOTFS uses a ready one instead), on a bridge of their own: the host is the subnet's .1, the\n"
     "nodes .2, .3, ... (no default route: nodes reach the host and each other only). nodectl makes each node's SSH\n"
     "host key before boot, so known_hosts is exact from the first login (no trust on first use), and one key pair\n"
     "per environment. It waits until every node answers SSH as root, then writes an inventory (root, the key, the\n"
     "known_hosts file), so `nodectl apply -p P -i INVENTORY` just works (--profile does it for you).\n"
     "--memory and --cpus limit each node (MemoryMax/CPUQuota of a transient unit; cgroups where no systemd runs).\n"
     "Running up again completes what is missing (after Ctrl-C, a killed node) and changes nothing otherwise.\n"
     "--bind applies to the nodes that call boots (e.g. a node killed, booted again with a device bound in).\n"
     "down stops the nodes and removes what up made: processes, overlays, bridge, cgroups, keys, inventory, state.\n"
     "State lives in /var/lib/nodectl/local/NAME (0700). Needs root, systemd-container and openssh-client\n"
     "(mmdebstrap to build the root filesystem). See docs/local.md.\n"
     "Exit status: 0 done, 2 usage (bad name, subnet in use, other settings), 3 no such environment or a bad\n"
     "profile, 4/5 status: some/all nodes not reachable, 1 other errors (the message says what).\n"
     "Examples:\n"
     "  nodectl local up dev --nodes 3 --subnet 198.18.50.0/24 --memory 1G --cpus 1\n"
     "  nodectl local up web --publish 8443:443     (127.0.0.1:8443 on this machine reaches web-1's port 443)\n"
     "  nodectl local up shop -p profiles/stack.toml --images build/images/redis.oci.tar\n"
     "  nodectl apply -p profiles/hardened.toml -i $(nodectl local inventory dev)\n"
     "  nodectl local ssh dev 2 'systemctl is-system-running --wait'   (quote a command that has options)\n"
     "  nodectl local down dev",
     &configure_local, &run_local},
};

}  // namespace

std::span<const CommandSpec> commands() {
    return k_commands;
}

}  // namespace nodectl::cli
