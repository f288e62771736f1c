#include "modules/image/oci.hpp"

#include "util/log.hpp"
#include "modules/image/common.hpp"
#include "modules/image/process.hpp"
#include "target/local_target.hpp"
#include "util/digest.hpp"
#include "util/fd.hpp"
#include "util/file.hpp"
#include "util/json.hpp"
#include "util/strings.hpp"
#include "util/tar_writer.hpp"
#include "util/time.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include <fcntl.h>
#include <unistd.h>

namespace nodectl::image::detail {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

Result<void> place_blob(const fs::path& blobs, const std::string& digest, const std::string& source) {
    fs::path dest = blobs / digest.substr(7);
    std::error_code ec;
    if (fs::exists(dest, ec)) {
        return Ok{};
    }
    fs::create_hard_link(source, dest, ec);
    if (ec) {
        ec.clear();
        fs::copy_file(source, dest, ec);
        if (ec) {
            return io("cannot copy " + source + " to " + dest.string(), ec);
        }
    }
    return Ok{};
}

Result<std::string> put_json_blob(const fs::path& blobs, const json& j) {
    std::string text = util::json_text(j);
    std::string digest = "sha256:" + util::sha256_hex(text);
    TRY_VOID(as_result(util::write_file_atomic((blobs / digest.substr(7)).string(), text, 0644), ErrorCode::io));
    return digest;
}

// The tar of the layout, written to `fd`: blobs/, blobs/sha256/ and its `blobs`, index.json,
// oci-layout; directories 0755 and files 0644, all dated `epoch`.
util::Expected<void> write_layout_tar(int fd, const fs::path& layout, const std::vector<std::string>& blobs,
                                      int64_t epoch) {
    util::TarWriter tar;
    auto dir_entry = [&](const std::string& p) {
        util::TarEntry e;
        e.path = p;
        e.type = util::TarEntry::Type::dir;
        e.mode = 0755;
        e.mtime = epoch;
        return tar.add(e);
    };
    auto file_entry = [&](const std::string& p) -> util::Expected<void> {
        util::TarEntry e;
        e.path = p;
        e.mode = 0644;
        e.mtime = epoch;
        std::error_code size_ec;
        e.size = fs::file_size(layout / p, size_ec);
        if (size_ec) {
            return util::fail((layout / p).string() + ": " + size_ec.message());
        }
        return tar.add_file(e, (layout / p).string());
    };
    std::vector<std::string> files;
    for (const auto& b : blobs) {
        files.push_back("blobs/sha256/" + b);
    }
    files.insert(files.end(), {"index.json", "oci-layout"});
    auto done = tar.open_fd(fd);
    for (const char* dir : {"blobs", "blobs/sha256"}) {
        if (done) {
            done = dir_entry(dir);
        }
    }
    for (const auto& f : files) {
        if (done) {
            done = file_entry(f);
        }
    }
    return done ? tar.close() : done;
}

// The layout as a tar: oci-layout, index.json, blobs/sha256/*; sorted, 0:0, dated `epoch`.
Result<void> write_oci_archive(const fs::path& layout, const std::string& out, int64_t epoch) {
    std::vector<std::string> blobs;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(layout / "blobs/sha256", ec)) {
        blobs.push_back(e.path().filename().string());
    }
    std::sort(blobs.begin(), blobs.end());
    std::string part = out + ".part";
    util::Fd fd(::open(part.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd) {
        return errno_error("cannot write " + part);
    }
    auto written = write_layout_tar(fd.get(), layout, blobs, epoch);
    // fsync and close checked here (a failed write can show at either); on error Fd closes it.
    if (written && (::fsync(fd.get()) != 0 || ::close(fd.release()) != 0)) {
        written = util::fail(std::string("cannot write: ") + std::strerror(errno));
    }
    fd.reset();
    if (written && ::rename(part.c_str(), out.c_str()) != 0) {
        written = util::fail(std::string("cannot rename: ") + std::strerror(errno));
    }
    if (!written) {
        ::unlink(part.c_str());
        return make_error(ErrorCode::io, out + ": " + written.error());
    }
    return Ok{};
}

}  // namespace

std::string oci_arch() {
    auto r = run_process({"dpkg", "--print-architecture"}, "", std::chrono::seconds(10));
    std::string a = r && r->exit_code == 0 ? util::trim(r->out) : "amd64";
    if (a == "i386") {
        return "386";
    }
    if (a == "armhf") {
        return "arm";
    }
    return a;
}

json image_config(const ImageConfig& base, const ImageConfig& own, bool has_base, const std::vector<Layer>& layers,
                  int64_t epoch, const std::string& arch) {
    ImageConfig c = own;
    if (has_base) {
        auto pick = [](auto& mine, const auto& theirs) {
            if (mine.empty()) {
                mine = theirs;
            }
        };
        pick(c.entrypoint, base.entrypoint);
        if (own.entrypoint.empty()) {
            pick(c.cmd, base.cmd);  // a new entrypoint resets the inherited cmd, as in Docker
        }
        pick(c.workdir, base.workdir);
        pick(c.user, base.user);
        pick(c.stop_signal, base.stop_signal);
        pick(c.exposed_ports, base.exposed_ports);
        pick(c.volumes, base.volumes);
        for (const auto& [k, v] : base.env) {
            c.env.emplace(k, v);
        }
        for (const auto& [k, v] : base.labels) {
            c.labels.emplace(k, v);
        }
    }
    if (!c.env.count("PATH")) {
        c.env["PATH"] = std::string(k_default_path);
    }
    json cfg = json::object();
    json env = json::array();
    for (const auto& [k, v] : c.env) {
        env.push_back(k + "=" + v);
    }
    cfg["Env"] = env;
    if (!c.entrypoint.empty()) {
        cfg["Entrypoint"] = c.entrypoint;
    }
    if (!c.cmd.empty()) {
        cfg["Cmd"] = c.cmd;
    }
    if (!c.workdir.empty()) {
        cfg["WorkingDir"] = c.workdir;
    }
    if (!c.user.empty()) {
        cfg["User"] = c.user;
    }
    if (!c.stop_signal.empty()) {
        cfg["StopSignal"] = c.stop_signal;
    }
    if (!c.exposed_ports.empty()) {
        json p = json::object();
        for (auto port : c.exposed_ports) {
            if (port.find('/') == std::string::npos) {
                port += "/tcp";
            }
            p[port] = json::object();
        }
        cfg["ExposedPorts"] = p;
    }
    if (!c.volumes.empty()) {
        json v = json::object();
        for (const auto& vol : c.volumes) {
            v[vol] = json::object();
        }
        cfg["Volumes"] = v;
    }
    if (!c.labels.empty()) {
        cfg["Labels"] = c.labels;
    }
    json diff_ids = json::array(), history = json::array();
    for (const auto& l : layers) {
        diff_ids.push_back(l.blob.diff_id);
        history.push_back({{"created", util::format_utc(epoch)}, {"created_by", l.created_by}});
    }
    return {{"architecture", arch},
            {"os", "linux"},
            {"created", util::format_utc(epoch)},
            {"config", cfg},
            {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}},
            {"history", history}};
}

Result<BuiltImage> write_image(const std::string& out_dir, const std::string& name, const std::vector<Layer>& layers,
                               const json& config, int64_t epoch) {
    fs::path out = fs::absolute(out_dir);
    std::error_code ec;
    fs::create_directories(out, ec);
    if (ec) {
        return io("cannot create " + out.string(), ec);
    }
    fs::path tmp = out / ("." + name + ".tmp");
    fs::remove_all(tmp, ec);
    fs::path blobs = tmp / "blobs/sha256";
    fs::create_directories(blobs, ec);
    if (ec) {
        return io("cannot create " + blobs.string(), ec);
    }
    BuiltImage img;
    img.name = name;
    img.reference = "localhost/nodectl/" + name + ":latest";
    json jlayers = json::array();
    img.cached = true;
    for (const auto& l : layers) {
        TRY_VOID(place_blob(blobs, l.blob.digest, l.blob_path));
        jlayers.push_back({{"mediaType", l.blob.media_type}, {"digest", l.blob.digest}, {"size", l.blob.size}});
        img.layer_digests.push_back(l.blob.digest);
        img.compressed_size += l.blob.size;
        img.cached = img.cached && l.cached;
    }
    std::string config_text = util::json_text(config);
    std::string config_digest = TRY(put_json_blob(blobs, config));
    json manifest = {{"schemaVersion", 2},
                     {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                     {"config",
                      {{"mediaType", "application/vnd.oci.image.config.v1+json"},
                       {"digest", config_digest},
                       {"size", config_text.size()}}},
                     {"layers", jlayers}};
    std::string manifest_text = util::json_text(manifest);
    img.manifest_digest = TRY(put_json_blob(blobs, manifest));
    // Two names for the one manifest: the tag, and NAME@DIGEST. A pod that pins the image by
    // digest (`stack.sites[].images.digests_from`) is looked up by the CRI under NAME@DIGEST (the
    // tag dropped), the name a registry pull would have recorded; an import names images only
    // after these annotations, so without it a pinned pod would find no image offline.
    json index = {
        {"schemaVersion", 2}, {"mediaType", "application/vnd.oci.image.index.v1+json"}, {"manifests", json::array()}};
    std::string repository = img.reference.substr(0, img.reference.rfind(':'));
    for (const std::string& ref : {img.reference, repository + "@" + img.manifest_digest}) {
        index["manifests"].push_back(
            {{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
             {"digest", img.manifest_digest},
             {"size", manifest_text.size()},
             {"annotations", {{"io.containerd.image.name", ref}, {"org.opencontainers.image.ref.name", ref}}}});
    }
    for (const auto& [file, text] : {std::pair<std::string, std::string>{"index.json", util::json_text(index) + "\n"},
                                     {"oci-layout", util::json_text(json{{"imageLayoutVersion", "1.0.0"}}) + "\n"}}) {
        TRY_VOID(as_result(util::write_file_atomic((tmp / file).string(), text, 0644), ErrorCode::io));
    }
    img.layout = (out / name).string();
    img.archive = (out / (name + ".oci.tar")).string();
    TRY_VOID(write_oci_archive(tmp, img.archive, epoch));
    fs::path old = out / ("." + name + ".old");
    fs::remove_all(old, ec);
    if (fs::exists(img.layout)) {
        fs::rename(img.layout, old, ec);
    }
    fs::rename(tmp, img.layout, ec);
    if (ec) {
        return io("cannot rename " + tmp.string() + " to " + img.layout, ec);
    }
    fs::remove_all(old, ec);
    return img;
}

Result<void> import_image(const BuildOptions& o, const BuiltImage& img) {
    if (o.import.empty()) {
        return Ok{};
    }
    if (o.import == "k3s") {
        fs::path dir = o.k3s_images_dir;
        std::error_code ec;
        fs::create_directories(dir, ec);
        fs::path dest = dir / ("nodectl-" + img.name + ".oci.tar");
        fs::path part = dir / (".nodectl-" + img.name + ".oci.tar.part");
        fs::copy_file(img.archive, part, fs::copy_options::overwrite_existing, ec);
        if (!ec) {
            fs::rename(part, dest, ec);
        }
        if (ec) {
            fs::remove(part);
            return io("cannot write " + dest.string(), ec);
        }
        log::info(k_log, "{}: written to {} (k3s imports it when it starts)", img.name, dest.string());
        return Ok{};
    }
    std::string socket = "/run/containerd/containerd.sock";
    if (o.import.starts_with("containerd=")) {
        socket = o.import.substr(11);
    }
    log::info(k_log, "{}: importing into containerd at {} (namespace {})", img.name, socket, o.ns);
    return run_logged({"ctr", "--address", socket, "--namespace", o.ns, "images", "import", img.archive},
                      std::string(k_log) + " " + img.name);
}

}  // namespace nodectl::image::detail
