#include "bench/tier_report.h"

#include <fmt/format.h>

#include <cstdio>
#include <fstream>

#include "vmm/vmm_process.h"

namespace s2z::bench {
namespace {

double mib(double bytes) { return bytes / (1 << 20); }

template <typename T, typename F>
Summary summarizeBy(const std::vector<T>& samples, F f) {
  std::vector<double> v;
  for (const auto& s : samples) v.push_back(static_cast<double>(f(s)));
  return summarize(std::move(v));
}

struct TierSummary {
  Summary wake, awake, agentWake, sleep, syn, charged, held, rss, cache, disk, densityWake;
  bool chargeMeasured = false;
};

TierSummary summarizeTier(const TierResult& t) {
  TierSummary s;
  s.wake = summarizeBy(t.wakes, [](auto& w) { return w.requestMs; });
  s.awake = summarizeBy(t.wakes, [](auto& w) { return w.awakeMs; });
  s.agentWake = summarizeBy(t.wakes, [](auto& w) { return w.agentWakeMs; });
  s.sleep = summarizeBy(t.wakes, [](auto& w) { return w.sleepMs; });
  s.syn = summarizeBy(t.wakes, [](auto& w) { return w.synRetrans; });
  s.charged = summarizeBy(t.footprints, [](auto& f) { return mib(f.cgroupBytes); });
  s.chargeMeasured = !t.footprints.empty() && t.footprints.front().cgroupMeasured;
  s.held = summarizeBy(t.footprints, [](auto& f) { return mib(f.heldBytes); });
  s.rss = summarizeBy(t.footprints, [](auto& f) { return mib(f.vmmRssBytes); });
  s.cache = summarizeBy(t.footprints, [](auto& f) { return mib(f.ramCacheBytes); });
  s.disk = summarizeBy(t.footprints, [](auto& f) { return mib(f.diskBytes); });
  s.densityWake = summarize(t.density.wakeMs);
  return s;
}

// "–" where the host gave the task no memory cgroup to read.
std::string chargeCell(bool measured, double mibValue) {
  return measured ? fmt::format("{:.1f}", mibValue) : "–";
}

}  // namespace

std::string tierTable(const TierResults& r, const Summary& coldBootMs) {
  std::string out =
      "\n### Sleep tiers (one task of 256 MiB per tier; memory and disk measured asleep, right before the request)\n\n"
      "| tier | wakes | wake median / p95 (ms, request sent → full response) | the next request, awake (median ms) "
      "| agent wake_ms median | SYN retrans | sleep (ms: pause or snapshot) | the task's cgroup charge (MiB, the kernel's) "
      "| host memory held (MiB: VMM anon + RAM file cached) "
      "| VMM RSS (MiB) | RAM file cached (MiB) | disk (MiB) |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& t : r.tiers) {
    TierSummary s = summarizeTier(t);
    out += fmt::format("| {} | {} | {:.1f} / {:.1f} | {:.1f} | {:.1f} | {:.0f} | {:.0f} | {} | {:.1f} | {:.1f} | {:.1f} | {:.1f} |\n",
                       t.name, s.wake.n, s.wake.median, s.wake.p95, s.awake.median, s.agentWake.median, s.syn.sum,
                       s.sleep.median, chargeCell(s.chargeMeasured, s.charged.median), s.held.median, s.rss.median,
                       s.cache.median, s.disk.median);
  }
  out += fmt::format("| cold boot (no sleep: a new VM) | {} | {:.0f} / {:.0f} | – | – | – | – | – | 0 | 0 | 0 | – |\n",
                     coldBootMs.n, coldBootMs.median, coldBootMs.p95);
  bool density = false;
  for (const auto& t : r.tiers) density = density || t.density.tasks > 0;
  if (!density) return out;
  out += "\n| density: tasks asleep at once | guest RAM each (MiB) | their cgroups' charge in total (MiB) "
         "| held in total (MiB: VMM anon + RAM file cached) | host memory in use, "
         "asleep minus before (MiB) | woken in random order: answered | wake median / p95 (ms) |\n"
         "|---|---|---|---|---|---|---|\n";
  for (const auto& t : r.tiers) {
    const auto& d = t.density;
    Summary w = summarize(d.wakeMs);
    out += fmt::format("| {}: {} | {} | {} | {:.0f} | {:.0f} | {}/{} | {:.0f} / {:.0f} |\n", t.name, d.tasks,
                       d.memoryMib, chargeCell(d.cgroupMeasured, mib(static_cast<double>(d.cgroupBytes))),
                       mib(static_cast<double>(d.heldBytes)), mib(static_cast<double>(d.hostUsedBytes)), d.answered,
                       d.tasks, w.median, w.p95);
  }
  return out;
}

Result<void> plotTiers(const TierResults& r, const Summary& coldBootMs, const std::filesystem::path& png) {
  auto gnuplot = vmm::resolveExecutable("gnuplot");
  if (!gnuplot.ok()) return makeError(ErrorCode::kNotFound, "gnuplot not installed (apt-get install gnuplot-nox)");
  auto data = png.string() + ".dat";
  {
    std::ofstream out(data);
    out << "# tier wake_median wake_p95 held_mib rss_mib cache_mib charged_mib\n";
    for (const auto& t : r.tiers) {
      TierSummary s = summarizeTier(t);
      out << fmt::format("\"{}\" {:.2f} {:.2f} {:.2f} {:.2f} {:.2f} {:.2f}\n", t.name, s.wake.median, s.wake.p95,
                         s.held.median, s.rss.median, s.cache.median, s.charged.median);
    }
    out << fmt::format("\"cold boot\" {:.2f} {:.2f} 0 0 0 0\n", coldBootMs.median, coldBootMs.p95);
  }
  std::string script = fmt::format(
      "set terminal pngcairo size 1200,480 font 'sans,10'; set output '{}';"
      "set multiplot layout 1,2 title 's2z-kata sleep tiers (QEMU, TCG, one 256 MiB task)';"
      "set style data histograms; set style histogram clustered gap 1; set style fill solid 0.8 border -1;"
      "set boxwidth 0.9; set grid ytics; set key top left; set xtics rotate by -20;"
      "set title 'wake: request sent -> full response'; set ylabel 'ms (log scale)'; set logscale y;"
      "plot '{}' using 2:xtic(1) title 'median', '' using 3 title 'p95';"
      "unset logscale y; set key top right; set title 'host memory held per sleeping task'; set ylabel 'MiB';"
      "plot '{}' using 7:xtic(1) title 'cgroup charge', '' using 4 title 'held (VMM anon + RAM cache)', '' using 5 title 'VMM RSS', '' using 6 title 'RAM file in page cache';"
      "unset multiplot",
      png.string(), data, data);
  std::string command = gnuplot->string() + " -e \"" + script + "\"";
  int rc = std::system(command.c_str());
  std::remove(data.c_str());
  if (rc != 0) return makeError(ErrorCode::kInternal, "gnuplot failed (exit " + std::to_string(rc) + ")");
  return okResult();
}

}  // namespace s2z::bench
