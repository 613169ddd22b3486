// Helpers shared by the guest-agent integration tests (workload_test.cpp,
// exec_test.cpp, task_logs_test.cpp): loading the plugin, a python3 HTTP workload, waiting for
// output and exits, and checking that a destroyed task leaves nothing.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "standin/nomad_client.h"
#include "tests/integration/test_env.h"

namespace s2z::integration {

// The long-lived plugin only (no probe and validation run: faster), its
// log collector starting `logCollectorDelay` after each task, as Nomad's may.
std::unique_ptr<standin::NomadClient> loadPlugin(
    const TestEnv& env, std::chrono::milliseconds logCollectorDelay = std::chrono::milliseconds(0));

// Waits up to 20 s for `text` in the task's stdout (or stderr) FIFO.
bool outputHas(standin::NomadClient& c, const std::string& taskId, const std::string& text,
               bool stderrFifo = false);

standin::ExitResult waitExit(standin::NomadClient& c, const std::string& taskId);

void destroyAndCheckClean(standin::NomadClient& c, const TestEnv& env, const std::string& taskId);

// StopTask with `timeout`, WaitTask, then destroyAndCheckClean.
void stopAndDestroy(standin::NomadClient& c, const TestEnv& env, const std::string& taskId,
                    std::chrono::milliseconds timeout);

// A python3 HTTP responder: per request one numbered line on stdout and one
// on stderr; the reply body is "<n> <guest time.time()>". SIGUSR1 prints a
// line; SIGTERM prints "graceful shutdown" and exits with 7.
extern const char* const kServer;

// Starts kServer as the task (extraTaskYaml/extraConfigYaml as agentTask's)
// and waits until it answers on port 8080.
standin::StartedTask startServer(standin::NomadClient& c, const TestEnv& env, const std::string& extraConfig = "",
                                 const std::string& extraTaskYaml = "");

}  // namespace s2z::integration
