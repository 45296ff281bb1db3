// Self-registration with the provisioner: POST /nodes/register, retried with backoff.
#include "storaged/registration.h"

#include <httplib.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>

#include "common/jwt.h"

namespace cairn::storaged {
namespace {

constexpr const char* kRegisterPath = "/nodes/register";
constexpr uint64_t kGiB = uint64_t{1} << 30;

bool AllDigits(std::string_view s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
}

// Text from the network for a log line: printable, quoted-safe, bounded.
std::string LogSafe(std::string_view text, size_t max = 200) {
  std::string out;
  for (char c : text.substr(0, max)) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\'';
    } else if (u < 0x20 || u == 0x7f) {
      out += ' ';
    } else {
      out += c;
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  if (text.size() > max) out += "...";
  return out;
}

int64_t UnixSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::string ProvisionerUrl::ToString() const {
  const bool v6 = host.find(':') != std::string::npos;
  return scheme + "://" + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

bool HttpsSupported() {
#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
  return true;
#else
  return false;
#endif
}

StatusOr<ProvisionerUrl> ParseProvisionerUrl(const std::string& url) {
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument("provisioner URL '" + url + "': " + why +
                                   " (want http://host:port or https://host:port)");
  };
  ProvisionerUrl out;
  std::string rest;
  if (url.rfind("http://", 0) == 0) {
    out.scheme = "http";
    rest = url.substr(7);
  } else if (url.rfind("https://", 0) == 0) {
    out.scheme = "https";
    rest = url.substr(8);
  } else {
    return bad("unsupported scheme");
  }
  if (auto slash = rest.find('/'); slash != std::string::npos) {
    if (rest.substr(slash) != "/") return bad("no path allowed");
    rest.resize(slash);
  }
  if (rest.find_first_of("?#@ \t") != std::string::npos) return bad("unexpected characters");
  std::string port_text;
  if (!rest.empty() && rest[0] == '[') {
    auto close = rest.find(']');
    if (close == std::string::npos) return bad("unclosed '['");
    out.host = rest.substr(1, close - 1);
    std::string after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return bad("junk after ']'");
      port_text = after.substr(1);
      if (port_text.empty()) return bad("empty port");
    }
  } else {
    auto colon = rest.rfind(':');
    if (colon != std::string::npos) {
      if (rest.find(':') != colon) return bad("IPv6 hosts go in brackets");
      port_text = rest.substr(colon + 1);
      if (port_text.empty()) return bad("empty port");
      rest.resize(colon);
    }
    out.host = rest;
  }
  if (out.host.empty()) return bad("no host");
  if (port_text.empty()) {
    out.port = out.scheme == "https" ? 443 : 80;
  } else {
    if (!AllDigits(port_text) || port_text.size() > 5) return bad("bad port");
    out.port = std::stoi(port_text);
    if (out.port < 1 || out.port > 65535) return bad("bad port");
  }
  return out;
}

StatusOr<DeviceFlag> ParseDeviceFlag(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument("--device=" + text + ": " + why + " (want ID=PATH[:GiB])");
  };
  auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0) return bad("no ID=");
  DeviceFlag d;
  d.id = text.substr(0, eq);
  d.path = text.substr(eq + 1);
  if (auto colon = d.path.rfind(':');
      colon != std::string::npos && AllDigits(std::string_view(d.path).substr(colon + 1))) {
    const std::string gib_text = d.path.substr(colon + 1);
    uint64_t gib = 0;
    auto r = std::from_chars(gib_text.data(), gib_text.data() + gib_text.size(), gib);
    if (r.ec != std::errc() || gib > (UINT64_MAX / kGiB)) return bad("capacity too large");
    d.capacity_bytes = gib * kGiB;
    d.path.resize(colon);
  }
  if (d.path.empty()) return bad("no PATH");
  if (d.path[0] != '/') return bad("PATH must be absolute");
  return d;
}

nlohmann::json RegistrationRequest::ToJson() const {
  return {{"name", name},
          {"manage", manage},
          {"storage", storage},
          {"zone", zone},
          {"cluster", cluster}};
}

StatusOr<std::unique_ptr<Registrar>> Registrar::Create(RegistrarOptions options) {
  CAIRN_ASSIGN_OR_RETURN(ProvisionerUrl url, ParseProvisionerUrl(options.provisioner));
  if (options.join_key.empty()) return Status::InvalidArgument("the join key is empty");
  if (options.initial_backoff.count() <= 0 || options.max_backoff < options.initial_backoff) {
    return Status::InvalidArgument("bad registration backoff");
  }
  std::unique_ptr<httplib::ClientImpl> client;
  if (url.scheme == "https") {
#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
    if (!options.ca_file.empty() && ::access(options.ca_file.c_str(), R_OK) != 0) {
      return Status::InvalidArgument("cannot read the provisioner CA file " + options.ca_file);
    }
    auto ssl = std::make_unique<httplib::SSLClient>(url.host, url.port);
    if (!ssl->is_valid()) return Status::Internal("cannot set up a TLS client");
    if (!options.ca_file.empty()) ssl->set_ca_cert_path(options.ca_file);
    ssl->enable_server_certificate_verification(true);
    client = std::move(ssl);
#else
    return Status::InvalidArgument("provisioner URL '" + options.provisioner +
                                   "': https is not supported by this build (cpp-httplib "
                                   "without OpenSSL); use http://");
#endif
  } else {
    if (!options.ca_file.empty()) {
      return Status::InvalidArgument("a provisioner CA file needs an https:// provisioner URL");
    }
    client = std::make_unique<httplib::ClientImpl>(url.host, url.port);
  }
  auto ms = [](std::chrono::milliseconds d) {
    return std::make_pair(static_cast<time_t>(d.count() / 1000),
                          static_cast<time_t>((d.count() % 1000) * 1000));
  };
  auto [cs, cus] = ms(options.connect_timeout);
  auto [rs, rus] = ms(options.read_timeout);
  client->set_connection_timeout(cs, cus);
  client->set_read_timeout(rs, rus);
  client->set_write_timeout(rs, rus);
  client->set_keep_alive(false);
  return std::unique_ptr<Registrar>(
      new Registrar(std::move(options), std::move(url), std::move(client)));
}

Registrar::Registrar(RegistrarOptions options, ProvisionerUrl url,
                     std::unique_ptr<httplib::ClientImpl> client)
    : options_(std::move(options)), url_(std::move(url)), client_(std::move(client)) {}

Registrar::~Registrar() { Stop(); }

void Registrar::Start(RegistrationRequest request, Callback on_registered) {
  if (thread_.joinable()) return;
  request_ = std::move(request);
  on_registered_ = std::move(on_registered);
  thread_ = std::thread([this] { Run(); });
}

void Registrar::RequestStop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
}

void Registrar::Stop() {
  RequestStop();
  if (!thread_.joinable()) return;
  std::unique_lock lock(mu_);
  while (!done_) {
    lock.unlock();
    // Aborts a request in flight; a no-op between requests. Repeated, since
    // a request may be just starting when stop_ is set.
    client_->stop();
    lock.lock();
    cv_.wait_for(lock, std::chrono::milliseconds(20), [&] { return done_; });
  }
  lock.unlock();
  thread_.join();
}

std::optional<Registration> Registrar::registration() const {
  std::lock_guard lock(mu_);
  return result_;
}

bool Registrar::WaitRegistered(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return result_.has_value() || done_; });
  return result_.has_value();
}

bool Registrar::Attempt(Registration* out, std::string* status, std::string* body) {
  const std::string token =
      SignJwt(options_.join_key, MakeRequestClaims("node", "POST", kRegisterPath, UnixSeconds()));
  httplib::Headers headers{{"Authorization", "Bearer " + token}};
  auto res = client_->Post(kRegisterPath, headers, request_.ToJson().dump(), "application/json");
  if (!res) {
    *status = httplib::to_string(res.error());
    if (res.error() == httplib::Error::SSLServerVerification) {
      *body = "the provisioner's certificate did not verify (--provisioner-ca-file?)";
    } else {
      body->clear();
    }
    return false;
  }
  *status = std::to_string(res->status);
  *body = res->body;
  if (res->status != 200) return false;
  auto j = nlohmann::json::parse(res->body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("id") || !j["id"].is_string() ||
      j["id"].get<std::string>().empty()) {
    *body = "reply is not {\"id\",\"cluster\"}: " + res->body;
    return false;
  }
  out->node_id = j["id"].get<std::string>();
  out->cluster = j.contains("cluster") && j["cluster"].is_string() ? j["cluster"].get<std::string>()
                                                                   : std::string();
  return true;
}

void Registrar::Run() {
  std::chrono::milliseconds backoff = options_.initial_backoff;
  spdlog::info(
      "event=register_start provisioner={} name={} manage={} storage={} zone={} cluster={}",
      url_.ToString(), request_.name, request_.manage, request_.storage, request_.zone,
      request_.cluster.empty() ? "-" : request_.cluster);
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stop_) break;
    }
    Registration reg;
    std::string status, body;
    const int attempt = ++attempts_;
    if (Attempt(&reg, &status, &body)) {
      reg.attempts = attempt;
      {
        std::lock_guard lock(mu_);
        result_ = reg;
      }
      // Logged before it shows as registered: whoever sees the state finds the line.
      spdlog::info("event=registered node_id={} cluster={} provisioner={} attempts={}", reg.node_id,
                   reg.cluster.empty() ? "-" : reg.cluster, url_.ToString(), attempt);
      registered_ = true;
      cv_.notify_all();
      if (on_registered_) on_registered_(reg);
      break;
    }
    std::unique_lock lock(mu_);
    if (stop_) break;
    spdlog::warn(
        "event=register_failed provisioner={} attempt={} status={} body=\"{}\" retry_in_ms={}",
        url_.ToString(), attempt, status, LogSafe(body), backoff.count());
    if (cv_.wait_for(lock, backoff, [&] { return stop_; })) break;
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
  {
    std::lock_guard lock(mu_);
    done_ = true;
  }
  cv_.notify_all();
}

}  // namespace cairn::storaged
