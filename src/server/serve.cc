#include "server/serve.h"

#include <csignal>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "server/logging.h"
#include "server/units.h"

namespace depot::server {

int run_serve(const ServerConfig& config, const FaceInstaller& install_faces) {
  configure_logging(config.log_level);
  // A closed log pipe (`depot serve | head`) must not kill the broker; sockets use MSG_NOSIGNAL.
  std::signal(SIGPIPE, SIG_IGN);
  // The server first: it takes over SIGTERM/SIGINT, so from the moment the data directory is
  // locked a stop request is always a clean stop.
  Server server(ServerOptions::from_config(config));
  auto data_dir = DataDir::open(config.data_dir, config.min_free_space);
  if (!data_dir) {
    spdlog::error("{}", data_dir.error().message);
    return exit_code_for(data_dir.error());
  }
  spdlog::info("depot {} starting (pid {}): data dir {} ({} free), fsync {}{}", DEPOT_VERSION,
               ::getpid(), data_dir.value().path().string(),
               describe_size(data_dir.value().free_space()), config.fsync.to_string(),
               config.config_file ? ", config " + config.config_file->string() : "");

  storage::SyncService sync(config.fsync);
  ServeContext context{config, data_dir.value(), sync, {}};
  // Faces' stores must close before `sync` goes, on every path out of here.
  struct ShutdownHooks {
    ServeContext& context;
    void run() {
      for (auto& hook : context.at_shutdown)
        hook();
      context.at_shutdown.clear();
    }
    ~ShutdownHooks() { run(); }
  } shutdown_hooks{context};
  if (install_faces) {
    if (auto installed = install_faces(server, context); !installed) {
      spdlog::error("{}", installed.error().message);
      return exit_code_for(installed.error());
    }
  }
  if (auto started = server.start(); !started) {
    spdlog::error("{}", started.error().message);
    return exit_code_for(started.error());
  }
  spdlog::info("ready: listening on {}", server.describe_listeners());
  server.run();
  shutdown_hooks.run();

  // Every connection is closed: nothing can append any more, so this sync is the last word.
  int exit_code = 0;
  if (auto synced = sync.sync_all(); !synced) {
    spdlog::error("final storage sync failed: {}", synced.error().message());
    exit_code = 1;
  }
  sync.stop();
  data_dir.value().release();
  spdlog::info("stopped; data dir {} unlocked", data_dir.value().path().string());
  return exit_code;
}

}  // namespace depot::server
