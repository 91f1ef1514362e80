// switchyard: the gateway executable.
//   switchyard [run] [-c FILE]   start the gateway (the default command)
//   switchyard check [-c FILE]   validate the settings and routes files
#include "gateway/config/config.hpp"
#include "gateway/server.hpp"

#include <CLI/CLI.hpp>

#include <cstdio>

namespace {

using namespace switchyard::gateway;

constexpr const char* default_config = "conf/switchyard.toml";

// Loads the settings and the routes file they name; prints the first error.
tl::expected<config::settings, int> load(const std::string& file) {
    auto s = config::load_settings(file);
    if (!s) {
        std::fprintf(stderr, "%s\n", s.error().to_string().c_str());
        return tl::unexpected(1);
    }
    std::vector<std::string> backends;
    for (const auto& b : s->backends) {
        backends.push_back(b.name);
    }
    auto routes = config::load_routes(s->routes_file, backends);
    if (!routes) {
        std::fprintf(stderr, "%s\n", routes.error().to_string().c_str());
        return tl::unexpected(1);
    }
    return std::move(*s);
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Switchyard: an MSNP and WebSocket messaging gateway"};
    app.set_version_flag("--version", "switchyard 0.1.0");
    std::string file = default_config;
    app.add_option("-c,--config", file, "gateway settings file")->capture_default_str();

    auto* run_cmd = app.add_subcommand("run", "start the gateway (the default)");
    run_cmd->add_option("-c,--config", file, "gateway settings file")->capture_default_str();
    auto* check_cmd = app.add_subcommand("check", "validate the settings file and the routes file it names");
    check_cmd->add_option("-c,--config", file, "gateway settings file")->capture_default_str();
    app.require_subcommand(0, 1);

    CLI11_PARSE(app, argc, argv);

    auto settings = load(file);
    if (!settings) {
        return settings.error();
    }
    if (check_cmd->parsed()) {
        std::printf("%s: ok\n%s: ok\n", settings->file.string().c_str(), settings->routes_file.string().c_str());
        return 0;
    }
    return run(*settings);
}
