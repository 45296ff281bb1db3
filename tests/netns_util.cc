#include "tests/netns_util.h"

#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <string_view>

#include "tests/mount_util.h"

namespace cairn::test {
namespace {

constexpr std::string_view kPrefix = "cpt";  // every name we create starts with it

Status Ip(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/usr/sbin/ip"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = RunCommand(argv, std::chrono::seconds(30));
  if (!r.ok()) return r.status();
  if (r->exit_code != 0) {
    std::string cmd;
    for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
    return Status::Internal(cmd + " failed: " + r->output);
  }
  return Status::Ok();
}

// Removes namespaces and bridges named cpt<PID>… whose PID is gone (a test
// that crashed before its destructor ran).
void SweepLeftovers() {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/run/netns", ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(kPrefix, 0) != 0) continue;
    const std::string digits =
        name.substr(kPrefix.size(), name.find('n', kPrefix.size()) - kPrefix.size());
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(digits));
    if (kill(pid, 0) == 0 || errno != ESRCH) continue;
    (void)Ip({"netns", "del", name});
    (void)Ip({"link", "del", std::string(kPrefix) + digits + "br"});
  }
}

}  // namespace

StatusOr<std::unique_ptr<NetnsTopology>> NetnsTopology::Create(int nodes) {
  if (nodes < 1 || nodes > 200) return Status::InvalidArgument("nodes must be in 1..200");
  if (geteuid() != 0) return Status::FailedPrecondition("network namespaces need root");
  if (access("/usr/sbin/ip", X_OK) != 0) {
    return Status::FailedPrecondition("iproute2's ip is not installed");
  }
  SweepLeftovers();
  std::unique_ptr<NetnsTopology> t(new NetnsTopology());
  t->nodes_ = nodes;
  t->subnet_ = 20 + static_cast<int>(getpid() % 200);
  t->prefix_ = std::string(kPrefix) + std::to_string(getpid());
  auto fail = [&](Status s) {
    t->Destroy();
    return s;
  };
  const std::string br = t->Name("br");
  if (Status s = Ip({"link", "add", br, "type", "bridge"}); !s.ok()) return fail(s);
  t->bridge_ = true;
  if (Status s = Ip({"addr", "add", t->host_address() + "/24", "dev", br}); !s.ok()) {
    return fail(s);
  }
  if (Status s = Ip({"link", "set", br, "up"}); !s.ok()) return fail(s);
  for (int i = 0; i < nodes; ++i) {
    const std::string ns = t->Name("n" + std::to_string(i));
    const std::string veth = t->Name("v" + std::to_string(i));
    if (Status s = Ip({"netns", "add", ns}); !s.ok()) return fail(s);
    t->created_ns_.push_back(ns);
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns},
             {"link", "set", veth, "master", br, "up"},
             {"-n", ns, "addr", "add", t->address(i) + "/24", "dev", "eth0"},
             {"-n", ns, "link", "set", "eth0", "up"},
             {"-n", ns, "link", "set", "lo", "up"}}) {
      if (Status s = Ip(args); !s.ok()) return fail(s);
    }
  }
  return t;
}

NetnsTopology::~NetnsTopology() { Destroy(); }

void NetnsTopology::Destroy() {
  // Deleting a namespace deletes its end of the veth pair, and with it ours.
  for (const auto& ns : created_ns_) (void)Ip({"netns", "del", ns});
  created_ns_.clear();
  if (bridge_) (void)Ip({"link", "del", Name("br")});
  bridge_ = false;
}

std::string NetnsTopology::Name(const std::string& what) const { return prefix_ + what; }

std::string NetnsTopology::address(int i) const {
  return "10.251." + std::to_string(subnet_) + "." + std::to_string(11 + i);
}

std::string NetnsTopology::host_address() const {
  return "10.251." + std::to_string(subnet_) + ".1";
}

std::string NetnsTopology::ns_path(int i) const {
  return "/run/netns/" + Name("n" + std::to_string(i));
}

std::vector<std::string> NetnsTopology::Wrap(int i, const std::vector<std::string>& argv) const {
  std::vector<std::string> out = {"/usr/bin/nsenter", "--net=" + ns_path(i), "--"};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

Status NetnsTopology::Isolate(int i) {
  if (i < 0 || i >= nodes_) return Status::InvalidArgument("no such node");
  return Ip({"link", "set", Name("v" + std::to_string(i)), "down"});
}

Status NetnsTopology::Rejoin(int i) {
  if (i < 0 || i >= nodes_) return Status::InvalidArgument("no such node");
  return Ip({"link", "set", Name("v" + std::to_string(i)), "up"});
}

}  // namespace cairn::test
