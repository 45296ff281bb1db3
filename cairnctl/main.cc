// cairnctl: the operator CLI of Cairn's provisioner (docs/provisioner.md).
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "cairnctl/cli.h"

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  std::vector<std::string> args(argv, argv + argc);
  cairn::ctl::CliEnv env;
  env.getenv_fn = [](const char* name) -> const char* { return std::getenv(name); };
  const int rc = cairn::ctl::RunCli(args, std::cout, std::cerr, env);
  std::cout.flush();
  return rc;
}
