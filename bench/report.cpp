#include "bench/report.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "bench/stats.h"

namespace s2z::bench {
namespace {

template <typename T, typename F>
std::vector<double> pick(const std::vector<T>& samples, F f) {
  std::vector<double> v;
  for (const auto& s : samples) v.push_back(static_cast<double>(f(s)));
  return v;
}

std::string ratio(const Summary& s, double base) {
  if (s.n == 0 || base <= 0) return "–";
  return fmt::format("{:.2f}×", s.median / base);
}

std::string row(const std::string& what, const Summary& s, const char* unitFmt,
                const std::string& target, const std::string& vs) {
  if (s.n == 0) return fmt::format("| {} | 0 | – | – | – | – | {} | {} |\n", what, target, vs);
  auto f = [&](double v) { return fmt::format(fmt::runtime(unitFmt), v); };
  return fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} |\n", what, s.n, f(s.min),
                     f(s.median), f(s.p95), f(s.max), target, vs);
}

std::string verdict(bool ok) { return ok ? "met" : "MISSED"; }

double mib(uint64_t bytes) { return static_cast<double>(bytes) / (1 << 20); }

// The guest agent's wake rows in one tier: the targets are for every
// wake, so the deep rows (restored into a standby) and the light ones (a
// resume, the default tier) are held to the same numbers.
struct AgentTier {
  const char* title;  // in the wake row, bold
  const char* label;  // in the rows below it
  const char* sleepKey;
};
constexpr AgentTier kAgentDeep{"deep sleep, restored into a standby", "deep", "snapshot_ms"};
constexpr AgentTier kAgentLight{"light sleep (the default tier: a resume)", "light", "pause_ms"};

std::string agentWakeRows(const AgentTier& t, const std::vector<WakeSample>& wakes, double base) {
  Summary wake = summarize(pick(wakes, [](auto& s) { return s.requestMs; }));
  Summary syn = summarize(pick(wakes, [](auto& s) { return s.synRetrans; }));
  std::string out;
  out += row(fmt::format("**wake, guest agent, {}** (busybox httpd from the Debian root): request sent → full "
                         "HTTP response",
                         t.title),
             wake, "{:.1f}", fmt::format("median ≤ 100, SYN retrans 0 (total {:.0f})", syn.sum), ratio(wake, base));
  out += row(fmt::format("guest agent, {}: sleep (`{}`)", t.label, t.sleepKey),
             summarize(pick(wakes, [](auto& s) { return s.sleepMs; })), "{:.1f}", "", "");
  out += row(fmt::format("guest agent, {}: guest clock error after the wake's correction, |ms|", t.label),
             summarize(pick(wakes, [](auto& s) { return s.clockErrorMs; })), "{:.1f}", "≤ 10", "");
  out += row(fmt::format("guest agent, {}: VM running again → guest clock corrected (`clock_ms`)", t.label),
             summarize(pick(wakes, [](auto& s) { return s.clockMs; })), "{:.1f}", "≤ 50", "");
  return out;
}

std::string agentWakeTargets(const AgentTier& t, const std::vector<WakeSample>& wakes) {
  Summary wake = summarize(pick(wakes, [](auto& s) { return s.requestMs; }));
  Summary syn = summarize(pick(wakes, [](auto& s) { return s.synRetrans; }));
  Summary err = summarize(pick(wakes, [](auto& s) { return s.clockErrorMs; }));
  Summary clock = summarize(pick(wakes, [](auto& s) { return s.clockMs; }));
  if (wake.n == 0) return fmt::format("{}: no wakes", t.label);
  return fmt::format(
      "{}: wake median {} ({:.0f} ms), SYN retransmits {} ({:.0f}), clock error {} (p95 {:.1f} ms), "
      "clock corrected within 50 ms {} (median {:.0f} ms)",
      t.label, verdict(wake.median <= 100), wake.median, verdict(syn.sum == 0), syn.sum, verdict(err.p95 <= 10),
      err.p95, verdict(clock.median <= 50), clock.median);
}

// The image task's wakes in one tier (the image's busybox httpd).
std::string imageWakeRow(const std::string& tier, const std::vector<WakeSample>& wakes) {
  Summary wake = summarize(pick(wakes, [](auto& s) { return s.requestMs; }));
  Summary syn = summarize(pick(wakes, [](auto& s) { return s.synRetrans; }));
  Summary clock = summarize(pick(wakes, [](auto& s) { return s.clockErrorMs; }));
  return row("**wake, image task**, " + tier + ": the image's busybox httpd, request sent → full HTTP response", wake,
             "{:.1f}",
             fmt::format("median ≤ 100: {}, SYN retrans {:.0f}, clock error p95 {:.1f} ms", verdict(wake.median <= 100),
                         syn.sum, clock.p95),
             "");
}

// Issue 10's rows: the Debian test image from a registry, as an image task.
std::string imageRows(const ImageResults& im) {
  if (!im.problem.empty()) return fmt::format("| image task rows | 0 | – | – | – | – | {} | – |\n", im.problem);
  if (im.convertSeconds.empty()) return "";
  Summary conv = summarize(im.convertSeconds);
  Summary uncached = summarize(pick(im.uncached, [](auto& s) { return s.ms; }));
  Summary uncachedPrep = summarize(pick(im.uncached, [](auto& s) { return s.prepareMs; }));
  Summary cached = summarize(pick(im.cached, [](auto& s) { return s.ms; }));
  Summary prebuilt = summarize(pick(im.prebuilt, [](auto& s) { return s.ms; }));
  Summary prepare = summarize(im.cachedPrepareMs);
  std::string out;
  out += row(fmt::format("image: conversion of the Debian test image (oci-archive {:.0f} MiB → files {:.0f} MiB → "
                         "ext4 {:.0f} MiB): skopeo copy + umoci raw unpack + mke2fs -d (s)",
                         mib(im.archiveBytes), mib(im.unpackedBytes), mib(im.diskBytes)),
             conv, "{:.2f}", fmt::format("{:.0f} MB/s of files (median)", conv.median > 0 ? im.unpackedBytes / 1e6 / conv.median : 0), "");
  out += row("image task, **uncached**: pull from the local registry + unpack + mkfs + boot → full HTTP response", uncached,
             "{:.0f}", fmt::format("of which the pull and conversion: median {:.0f}", uncachedPrep.median), "");
  out += row("image task, **cached**: start → full HTTP response", cached, "{:.0f}",
             fmt::format("≤ prebuilt + 50 ({:.0f}): {}", prebuilt.median + 50, verdict(cached.median <= prebuilt.median + 50)),
             "");
  out += row("task with the same disk prebuilt (`rootfs`): start → full HTTP response", prebuilt, "{:.0f}", "", "");
  out += row("image: what a cached image adds to StartTask (prepareImage of a known tag)", prepare, "{:.2f}",
             fmt::format("≤ 50: {}", verdict(prepare.n > 0 && prepare.median <= 50)), "");
  out += imageWakeRow("deep sleep + standby", im.wakes);
  out += imageWakeRow("light sleep (the default tier)", im.lightWakes);
  return out;
}

}  // namespace

std::string markdownReport(const BenchResults& r, const BenchConfig& c) {
  const auto& w = r.agent.wakes;
  Summary wake = summarize(pick(w, [](auto& s) { return s.requestMs; }));
  Summary agentWake = summarize(pick(w, [](auto& s) { return s.agentWakeMs; }));
  Summary syn = summarize(pick(w, [](auto& s) { return s.synRetrans; }));
  Summary segs = summarize(pick(w, [](auto& s) { return s.retransSegs; }));
  Summary sleep = summarize(pick(w, [](auto& s) { return s.sleepMs; }));
  Summary snap = summarize(pick(w, [](auto& s) { return s.snapshotBytes / 1024.0; }));
  Summary cold = summarize(pick(r.agent.colds, [](auto& s) { return s.ms; }));
  Summary coldSyn = summarize(pick(r.agent.colds, [](auto& s) { return s.synRetrans; }));
  Summary coldRefused = summarize(pick(r.agent.colds, [](auto& s) { return s.refused; }));
  Summary held = summarize(pick(r.direct.held, [](auto& s) { return s.requestMs; }));
  Summary unheld = summarize(pick(r.direct.unheld, [](auto& s) { return s.requestMs; }));
  Summary unheldSyn = summarize(pick(r.direct.unheld, [](auto& s) { return s.synRetrans; }));
  const double base = wake.median;

  std::string out;
  out += "## Wake benchmark\n\n";
  out += fmt::format("```\n$ {}\n```\n\n", r.commandLine);
  out += fmt::format("{}; guest 1 vCPU, 256 MiB, idle timeout {} ms; {} measured wakes after "
                     "one warm-up, client in the benchmark's own netns. Times in ms.\n\n",
                     r.host, c.idleTimeout.count(), w.size());
  out += "| measurement | n | min | median | p95 | max | target | vs held-tap wake (median) |\n";
  out += "|---|---|---|---|---|---|---|---|\n";
  out += row("**wake, tap held** (agent): request sent → full HTTP response", wake, "{:.1f}",
             "median ≤ 250, p95 ≤ 400", "1.00×");
  out += row("agent: wake event → VM restored (`wake_ms`)", agentWake, "{:.1f}", "", "");
  out += row("SYN retransmits per wake (TcpExt TCPSynRetrans)", syn, "{:.0f}",
             fmt::format("0 (total {:.0f})", syn.sum), "");
  out += row("TCP segments retransmitted per wake (Tcp RetransSegs)", segs, "{:.0f}",
             fmt::format("0 (total {:.0f})", segs.sum), "");
  out += row("sleep: pause → VMM exited (`snapshot_ms`)", sleep, "{:.1f}", "≤ 50", "");
  out += row("snapshot size (KiB)", snap, "{:.0f}", "", "");
  out += row("cold boot (agent): start → full HTTP response", cold, "{:.0f}",
             fmt::format("SYN retrans {:.0f}, refused+retried {:.0f} per boot (median)",
                         coldSyn.median, coldRefused.median),
             ratio(cold, base));
  out += row("wake, tap **not held** while asleep (vmm direct, no standby)", unheld, "{:.1f}",
             fmt::format("SYN retrans {:.0f} per wake (median); {} vs the held row below",
                         unheldSyn.median, ratio(unheld, held.median)),
             ratio(unheld, base));
  out += row("wake, tap held (vmm direct, no standby: same path as the row above)", held,
             "{:.1f}", "", ratio(held, base));
  out += row("of a restore: the snapshot manifest check (CRC-32 of the device state, RAM identity)",
             summarize(pick(r.direct.held, [](auto& s) { return s.verifyMs; })), "{:.2f}", "", "");
  if (r.agent.agentProblem.empty()) {
    Summary aCold = summarize(pick(r.agent.agentColds, [](auto& s) { return s.ms; }));
    out += agentWakeRows(kAgentDeep, r.agent.agentWakes, base);
    out += agentWakeRows(kAgentLight, r.agent.agentLightWakes, base);
    out += row("guest agent: cold boot, start → full HTTP response", aCold, "{:.0f}",
               fmt::format("≤ agent-less cold boot + 500 ({:.0f})", cold.median + 500),
               ratio(aCold, base));
    out += fmt::format(
        "| guest agent's RSS in the guest (VmRSS of PID 1, read by the workload) (KiB) | 1 | – | "
        "{} | – | – | ≤ 2048 | – |\n",
        r.agent.guestAgentRssKiB);
    out += fmt::format(
        "| initramfs size (KiB): agent guest / test guest | 1 | – | {} / {} | – | – | agent "
        "guest ≤ 15360 | – |\n",
        r.agent.agentInitramfsBytes / 1024, r.agent.testInitramfsBytes / 1024);
  } else {
    out += fmt::format("| guest agent rows | 0 | – | – | – | – | {} | – |\n", r.agent.agentProblem);
  }
  out += imageRows(r.images);
  const ProcessMemory& h = r.agent.logHolder;
  out += fmt::format(
      "| log FIFO holder per task (`s2z-log-holder`, kept for the task's life): RSS / PSS / "
      "private dirty (KiB) | 1 | – | {} / {} / {} | – | – | private dirty is what each task "
      "adds; the other {} KiB are the program's file pages, page cache shared by all holders | – |\n",
      h.rssKiB, h.pssKiB, h.privateDirtyKiB, h.privateCleanKiB);
  if (r.tcProblem.empty()) {
    out += fmt::format(
        "| TC classifier added cost per packet (BPF_PROG_TEST_RUN ×{}, median of 3) | 3 | – | "
        "{:.0f} ns | – | – | counted path {:.0f} ns, health path {:.0f} ns, empty classifier {:.0f} ns | – |\n",
        c.tcRepeat, r.tc.addedNs(), r.tc.countedNs, r.tc.healthNs, r.tc.emptyNs);
  } else {
    out += fmt::format("| TC classifier added cost per packet | 0 | – | – | – | – | {} | – |\n",
                       r.tcProblem);
  }
  out += "\n";
  out += "Held-tap wakes go through the real agent (TC program → ring buffer → restore into a "
         "standby QEMU with the same tap fd); the request is sent "
      + std::to_string(c.settle.count()) +
         " ms after the \"Sleeping\" event. Cold boots: the request leaves as soon as "
         "`start()` returns and rides TCP's SYN retransmits while the guest boots (a connect refused before the guest's server listens is retried after 50 ms). Direct rows: "
         "`Vmm::restore` (new QEMU, no standby) starts right after the SYN leaves, once with our "
         "tap fd held and once with it closed during sleep (the SYN is dropped, TCP resends it "
         "a second later).\n\n";
  if (wake.n > 0) {
    out += fmt::format(
        "Targets: median wake {} ({:.0f} ms), p95 {} ({:.0f} ms), retransmits {} ({:.0f}), "
        "sleep {} (median {:.1f} ms, p95 {:.1f} ms). Run took {:.0f} s.\n",
        verdict(wake.median <= 250), wake.median, verdict(wake.p95 <= 400), wake.p95,
        verdict(syn.sum == 0 && segs.sum == 0), syn.sum + segs.sum, verdict(sleep.median <= 50),
        sleep.median, sleep.p95, r.totalSeconds);
  }
  if (!r.agent.agentWakes.empty()) {
    Summary aCold = summarize(pick(r.agent.agentColds, [](auto& s) { return s.ms; }));
    out += fmt::format(
        "Guest agent targets: {}; {}; cold boot {} ({:.0f} vs {:.0f} ms), agent RSS {} ({} KiB), "
        "initramfs {} ({} KiB).\n",
        agentWakeTargets(kAgentDeep, r.agent.agentWakes), agentWakeTargets(kAgentLight, r.agent.agentLightWakes),
        verdict(aCold.n > 0 && aCold.median <= cold.median + 500), aCold.median, cold.median,
        verdict(r.agent.guestAgentRssKiB > 0 && r.agent.guestAgentRssKiB <= 2048),
        r.agent.guestAgentRssKiB, verdict(r.agent.agentInitramfsBytes <= 15u << 20),
        r.agent.agentInitramfsBytes / 1024);
  }
  std::vector<std::string> failures = r.agent.failures;
  failures.insert(failures.end(), r.direct.failures.begin(), r.direct.failures.end());
  failures.insert(failures.end(), r.images.failures.begin(), r.images.failures.end());
  if (!failures.empty()) {
    out += fmt::format("\n{} request(s) failed (not in the table):\n", failures.size());
    for (const auto& f : failures) out += "- " + f + "\n";
  }
  return out;
}

std::string jsonReport(const BenchResults& r, const BenchConfig& c) {
  using nlohmann::json;
  auto stats = [](const std::vector<double>& v) {
    Summary s = summarize(v);
    return json{{"n", s.n}, {"min", s.min}, {"median", s.median}, {"p95", s.p95},
                {"max", s.max}, {"mean", s.mean}, {"samples", v}};
  };
  const auto& w = r.agent.wakes;
  json j;
  j["command_line"] = r.commandLine;
  j["host"] = r.host;
  j["idle_timeout_ms"] = c.idleTimeout.count();
  j["wake_ms"] = stats(pick(w, [](auto& s) { return s.requestMs; }));
  j["agent_wake_ms"] = stats(pick(w, [](auto& s) { return s.agentWakeMs; }));
  j["syn_retransmits"] = stats(pick(w, [](auto& s) { return s.synRetrans; }));
  j["retrans_segments"] = stats(pick(w, [](auto& s) { return s.retransSegs; }));
  j["sleep_ms"] = stats(pick(w, [](auto& s) { return s.sleepMs; }));
  j["snapshot_bytes"] = stats(pick(w, [](auto& s) { return s.snapshotBytes; }));
  j["cold_boot_ms"] = stats(pick(r.agent.colds, [](auto& s) { return s.ms; }));
  j["cold_boot_syn_retransmits"] = stats(pick(r.agent.colds, [](auto& s) { return s.synRetrans; }));
  j["cold_boot_refused"] = stats(pick(r.agent.colds, [](auto& s) { return s.refused; }));
  j["direct_held_ms"] = stats(pick(r.direct.held, [](auto& s) { return s.requestMs; }));
  j["direct_unheld_ms"] = stats(pick(r.direct.unheld, [](auto& s) { return s.requestMs; }));
  j["direct_unheld_syn_retransmits"] =
      stats(pick(r.direct.unheld, [](auto& s) { return s.synRetrans; }));
  j["direct_restore_ms"] = stats(pick(r.direct.held, [](auto& s) { return s.restoreMs; }));
  j["snapshot_verify_ms"] = stats(pick(r.direct.held, [](auto& s) { return s.verifyMs; }));
  if (r.tcProblem.empty()) {
    j["tc_cost_ns"] = {{"counted", r.tc.countedNs}, {"health", r.tc.healthNs},
                       {"empty", r.tc.emptyNs}, {"added", r.tc.addedNs()},
                       {"repeat", c.tcRepeat}};
  } else {
    j["tc_cost_ns"] = {{"error", r.tcProblem}};
  }
  j["agent_wake_request_ms"] = stats(pick(r.agent.agentWakes, [](auto& s) { return s.requestMs; }));
  j["agent_wake_syn_retransmits"] =
      stats(pick(r.agent.agentWakes, [](auto& s) { return s.synRetrans; }));
  j["agent_clock_error_ms"] = stats(pick(r.agent.agentWakes, [](auto& s) { return s.clockErrorMs; }));
  j["agent_clock_ms"] = stats(pick(r.agent.agentWakes, [](auto& s) { return s.clockMs; }));
  j["agent_light"] = {
      {"wake_request_ms", stats(pick(r.agent.agentLightWakes, [](auto& s) { return s.requestMs; }))},
      {"wake_syn_retransmits", stats(pick(r.agent.agentLightWakes, [](auto& s) { return s.synRetrans; }))},
      {"clock_error_ms", stats(pick(r.agent.agentLightWakes, [](auto& s) { return s.clockErrorMs; }))},
      {"clock_ms", stats(pick(r.agent.agentLightWakes, [](auto& s) { return s.clockMs; }))},
      {"pause_ms", stats(pick(r.agent.agentLightWakes, [](auto& s) { return s.sleepMs; }))}};
  j["agent_cold_boot_ms"] = stats(pick(r.agent.agentColds, [](auto& s) { return s.ms; }));
  j["guest_agent_rss_kib"] = r.agent.guestAgentRssKiB;
  j["initramfs_bytes"] = {{"agent_guest", r.agent.agentInitramfsBytes},
                          {"test_guest", r.agent.testInitramfsBytes}};
  if (!r.agent.agentProblem.empty()) j["agent_problem"] = r.agent.agentProblem;
  j["log_holder_kib"] = {{"rss", r.agent.logHolder.rssKiB},
                         {"pss", r.agent.logHolder.pssKiB},
                         {"private_clean", r.agent.logHolder.privateCleanKiB},
                         {"private_dirty", r.agent.logHolder.privateDirtyKiB}};
  std::vector<std::string> failures = r.agent.failures;
  failures.insert(failures.end(), r.direct.failures.begin(), r.direct.failures.end());
  j["failures"] = failures;
  j["image"] = {{"convert_seconds", stats(r.images.convertSeconds)},
                {"archive_bytes", r.images.archiveBytes},
                {"unpacked_bytes", r.images.unpackedBytes},
                {"disk_bytes", r.images.diskBytes},
                {"uncached_start_ms", stats(pick(r.images.uncached, [](auto& s) { return s.ms; }))},
                {"cached_start_ms", stats(pick(r.images.cached, [](auto& s) { return s.ms; }))},
                {"prebuilt_start_ms", stats(pick(r.images.prebuilt, [](auto& s) { return s.ms; }))},
                {"cached_prepare_ms", stats(r.images.cachedPrepareMs)},
                {"wake_request_ms", stats(pick(r.images.wakes, [](auto& s) { return s.requestMs; }))},
                {"wake_syn_retransmits", stats(pick(r.images.wakes, [](auto& s) { return s.synRetrans; }))},
                {"light_wake_request_ms", stats(pick(r.images.lightWakes, [](auto& s) { return s.requestMs; }))},
                {"light_wake_syn_retransmits", stats(pick(r.images.lightWakes, [](auto& s) { return s.synRetrans; }))},
                {"problem", r.images.problem}};
  j["total_seconds"] = r.totalSeconds;
  return j.dump(2) + "\n";
}

}  // namespace s2z::bench
