// TestCluster: brickd "nodes" on 127.0.0.2.. with a volume's bricks attached.
#include "tests/cluster_util.h"

#include "common/file_util.h"

namespace cairn::test {

StatusOr<std::unique_ptr<TestCluster>> TestCluster::Start(ClusterOptions options) {
  if (options.nodes < 1 || options.nodes > 200 || options.subvolumes < 1 || options.replica < 1) {
    return Status::InvalidArgument("cluster: bad shape");
  }
  std::unique_ptr<TestCluster> c(new TestCluster());
  c->options_ = options;
  c->token_ = RandomHexToken();
  c->admin_token_ = RandomHexToken();
  for (int i = 0; i < options.nodes; ++i) {
    BrickdOptions bo;
    bo.host = "127.0.0." + std::to_string(2 + i);
    bo.state_file = true;  // restarts re-attach the bricks
    bo.threads = options.brickd_threads;
    bo.log_level = options.log_level;
    bo.data_token = c->token_;
    bo.admin_token = c->admin_token_;
    bo.metrics = options.metrics;
    CAIRN_ASSIGN_OR_RETURN(auto node, BrickdProcess::Start(bo));
    c->nodes_.push_back(std::move(node));
  }
  c->spec_.volume_id = Uuid::Random();
  c->spec_.name = options.name;
  c->spec_.replica = options.replica;
  c->spec_.arbiter = options.arbiter;
  c->spec_.generation = 1;
  c->spec_.type = options.replica == 1      ? client::VolumeSpec::Type::kDistribute
                  : options.subvolumes == 1 ? client::VolumeSpec::Type::kReplicate
                                            : client::VolumeSpec::Type::kDistributeReplicate;
  for (int s = 0; s < options.subvolumes; ++s) {
    std::vector<client::BrickRef> bricks;
    for (int r = 0; r < options.replica; ++r) {
      BrickdProcess& node = *c->nodes_[c->node_of(s, r)];
      std::string brick_id = options.name + "-s" + std::to_string(s) + "-r" + std::to_string(r);
      pb::AttachRequest req;
      req.set_brick_id(brick_id);
      req.set_path(c->dir_.MakeSubdir("bricks/" + brick_id));
      req.set_capacity_bytes(options.brick_capacity);
      BrickdClient admin(node.address());
      auto rep = admin.Call(&pb::BrickAdmin::Stub::Attach, req, node.admin_token());
      if (!rep.ok()) return rep.status();
      client::BrickRef ref;
      ref.node = node.address();
      ref.brick_id = brick_id;
      ref.arbiter = options.arbiter == 1 && r + 1 == options.replica;
      bricks.push_back(std::move(ref));
    }
    c->spec_.subvolumes.push_back(std::move(bricks));
  }
  c->spec_path_ = c->dir_.Sub("volume.json");
  c->token_path_ = c->dir_.Sub("data.token");
  CAIRN_RETURN_IF_ERROR(WriteFileAtomic(c->spec_path_, c->spec_.ToJson(), 0644));
  CAIRN_RETURN_IF_ERROR(WriteFileAtomic(c->token_path_, c->token_ + "\n", 0600));
  // Round-trip through the parser, as cairn-mount will read it.
  CAIRN_ASSIGN_OR_RETURN(c->spec_, client::VolumeSpec::Load(c->spec_path_));
  return c;
}

TestCluster::~TestCluster() {
  // Nodes go first (killed by pid), then the directories with the bricks.
  nodes_.clear();
}

int TestCluster::node_of(int s, int r) const {
  return (s * options_.replica + r) % static_cast<int>(nodes_.size());
}

std::string TestCluster::brick_path(int s, int r) const {
  return dir_.Sub("bricks/" + options_.name + "-s" + std::to_string(s) + "-r" + std::to_string(r));
}

StatusOr<std::unique_ptr<client::Volume>> TestCluster::OpenVolume(client::Options options) const {
  options.token = token_;
  if (options.connect_timeout == client::Options{}.connect_timeout) {
    options.connect_timeout = std::chrono::milliseconds(5000);
  }
  if (options.rpc_timeout == client::Options{}.rpc_timeout) {
    options.rpc_timeout = std::chrono::milliseconds(5000);
  }
  options.reconnect_interval = std::chrono::milliseconds(200);
  return client::Volume::Open(spec_, options);
}

Status TestCluster::RestartNode(int i) { return nodes_.at(i)->Restart(); }

}  // namespace cairn::test
