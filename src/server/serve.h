#pragma once
// `depot serve` from start to exit: data directory, storage services, faces, graceful shutdown.
#include <functional>
#include <vector>

#include "server/config.h"
#include "server/data_dir.h"
#include "server/errc.h"
#include "server/server.h"
#include "storage/sync_service.h"

namespace depot::server {

// What a face needs to build its handler: the settings, the locked data directory and the
// storage services the faces share.
struct ServeContext {
  const ServerConfig& config;
  const DataDir& data_dir;
  storage::SyncService& sync;
  // Run in order once every connection is closed and before storage is synced and the data
  // directory unlocked: faces close their stores here.
  std::vector<std::function<void()>> at_shutdown;
};

// Registers protocol faces on the server (Server::register_face); the `depot` command passes the
// faces it was built with.
using FaceInstaller = std::function<StartupResult<void>(Server& server, ServeContext& context)>;

// Runs until SIGTERM/SIGINT, then drains connections, syncs storage and unlocks the data directory.
// Returns the process exit code: 0 after a clean stop, 1 when start-up fails (the reason is
// logged).
int run_serve(const ServerConfig& config, const FaceInstaller& install_faces);

}  // namespace depot::server
