// Flag parsing and JSON config files.
#include "common/flags.h"

#include <charconv>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace cairn {

Flags::Flags(std::string program, std::string summary)
    : program_(std::move(program)), summary_(std::move(summary)) {
  AddString("config", "", "JSON file of flag values (command-line flags win)");
}

void Flags::AddString(const std::string& name, std::string default_value, std::string help) {
  flags_[name] = Flag{Type::kString, default_value, std::move(help), default_value};
}
void Flags::AddInt(const std::string& name, int64_t default_value, std::string help) {
  flags_[name] = Flag{Type::kInt, std::to_string(default_value), std::move(help),
                      std::to_string(default_value)};
}
void Flags::AddBool(const std::string& name, bool default_value, std::string help) {
  const char* v = default_value ? "true" : "false";
  flags_[name] = Flag{Type::kBool, v, std::move(help), v};
}

void Flags::AddStringList(const std::string& name, std::string help) {
  flags_[name] = Flag{Type::kStringList, "", std::move(help), ""};
}

Status Flags::Set(const std::string& name, const std::string& value, bool from_file) {
  auto it = flags_.find(name);
  if (it == flags_.end()) return Status::InvalidArgument("unknown flag --" + name);
  Flag& f = it->second;
  if (from_file && f.set) return Status::Ok();  // the command line wins
  switch (f.type) {
    case Type::kString:
      f.value = value;
      break;
    case Type::kStringList:
      f.value = value;
      f.values.push_back(value);
      break;
    case Type::kInt: {
      int64_t v = 0;
      auto r = std::from_chars(value.data(), value.data() + value.size(), v);
      if (r.ec != std::errc() || r.ptr != value.data() + value.size()) {
        return Status::InvalidArgument("--" + name + " wants an integer, got '" + value + "'");
      }
      f.value = std::to_string(v);
      break;
    }
    case Type::kBool:
      if (value == "true" || value == "1" || value == "yes") {
        f.value = "true";
      } else if (value == "false" || value == "0" || value == "no") {
        f.value = "false";
      } else {
        return Status::InvalidArgument("--" + name + " wants true or false, got '" + value + "'");
      }
      break;
  }
  f.set = true;
  return Status::Ok();
}

Status Flags::LoadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::InvalidArgument("cannot read config file " + path);
  nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::InvalidArgument("config file " + path + " is not a JSON object");
  }
  for (auto& [key, val] : j.items()) {
    if (auto it = flags_.find(key); it != flags_.end() && it->second.type == Type::kStringList) {
      if (it->second.set) continue;  // the command line wins
      nlohmann::json list = val.is_array() ? val : nlohmann::json::array({val});
      for (const auto& v : list) {
        if (!v.is_string()) {
          return Status::InvalidArgument("config file " + path + ": key '" + key +
                                         "' must be a string or an array of strings");
        }
        it->second.value = v.get<std::string>();
        it->second.values.push_back(v.get<std::string>());
      }
      it->second.set = true;
      continue;
    }
    std::string text;
    if (val.is_string()) {
      text = val.get<std::string>();
    } else if (val.is_boolean() || val.is_number_integer()) {
      text = val.dump();
    } else {
      return Status::InvalidArgument("config file " + path + ": key '" + key +
                                     "' must be a string, integer or boolean");
    }
    CAIRN_RETURN_IF_ERROR(Set(key, text, /*from_file=*/true).WithContext(path));
  }
  return Status::Ok();
}

Status Flags::Parse(int argc, const char* const* argv) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--") {
      for (++i; i < argc; ++i) positional_.push_back(argv[i]);
      break;
    }
    if (arg.size() < 3 || arg.compare(0, 2, "--") != 0) {
      positional_.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2);
    if (name == "help") {
      help_ = true;
      continue;
    }
    std::string value;
    bool has_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    auto it = flags_.find(name);
    if (it == flags_.end() && !has_value && name.rfind("no-", 0) == 0) {
      auto neg = flags_.find(name.substr(3));
      if (neg != flags_.end() && neg->second.type == Type::kBool) {
        CAIRN_RETURN_IF_ERROR(Set(name.substr(3), "false", false));
        continue;
      }
    }
    if (it == flags_.end()) return Status::InvalidArgument("unknown flag --" + name);
    if (!has_value) {
      if (it->second.type == Type::kBool) {
        value = "true";
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        return Status::InvalidArgument("flag --" + name + " needs a value");
      }
    }
    CAIRN_RETURN_IF_ERROR(Set(name, value, false));
  }
  if (const std::string& cfg = flags_["config"].value; !cfg.empty()) {
    CAIRN_RETURN_IF_ERROR(LoadFile(cfg));
  }
  return Status::Ok();
}

std::string Flags::Usage() const {
  std::ostringstream out;
  out << "usage: " << program_ << " [flags]\n" << summary_ << "\n\nflags:\n";
  for (const auto& [name, f] : flags_) {
    out << "  --" << name;
    if (f.type != Type::kBool) out << "=VALUE";
    if (f.type == Type::kStringList) out << " (repeatable)";
    out << "\n      " << f.help;
    if (!f.default_value.empty()) out << " (default: " << f.default_value << ")";
    out << "\n";
  }
  return out.str();
}

std::string Flags::GetString(const std::string& name) const {
  auto it = flags_.find(name);
  return it == flags_.end() ? std::string() : it->second.value;
}
int64_t Flags::GetInt(const std::string& name) const {
  auto it = flags_.find(name);
  return it == flags_.end() ? 0 : std::stoll(it->second.value);
}
bool Flags::GetBool(const std::string& name) const {
  auto it = flags_.find(name);
  return it != flags_.end() && it->second.value == "true";
}
std::vector<std::string> Flags::GetStringList(const std::string& name) const {
  auto it = flags_.find(name);
  return it == flags_.end() ? std::vector<std::string>() : it->second.values;
}
bool Flags::IsSet(const std::string& name) const {
  auto it = flags_.find(name);
  return it != flags_.end() && it->second.set;
}

StatusOr<std::pair<std::string, int>> SplitHostPort(const std::string& address) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return Status::InvalidArgument("address must be host:port, got '" + address + "'");
  }
  const std::string port_text = address.substr(colon + 1);
  if (port_text.empty() || port_text.size() > 5 ||
      port_text.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(port_text) > 65535) {
    return Status::InvalidArgument("bad port in '" + address + "'");
  }
  return std::make_pair(address.substr(0, colon), std::stoi(port_text));
}

}  // namespace cairn
