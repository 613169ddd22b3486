// VM addresses from the plugin's `subnet`. One file per leased address in a
// directory, created with O_EXCL: allocation is atomic between threads and
// between plugin processes, and survives crashes (a restarted plugin reclaims
// what its records name).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "agent/ipv4_route.h"
#include "common/result.h"

namespace s2z::agent {

struct Lease {
  std::string address;   // VM IPv4, dotted
  std::string gateway;   // host side: first host address of the subnet
  int prefixLength = 0;
  std::string netmask;   // dotted form of prefixLength
  uint32_t mtu = 0;      // the link's, when a network sets one (group: eth0's); 0: 1500
  std::vector<Ipv4Route> routes{};  // the link's others (group: eth0's); host mode: none
};

class AddressPool {
 public:
  // Opens (creating if needed) the lease directory for subnetCidr
  // ("10.89.0.0/24"; prefix 8..30). Fails: kInvalidArgument naming the
  // subnet if it does not parse or is too small, kSystem if dir cannot be made.
  static Result<AddressPool> open(const std::filesystem::path& dir,
                                  const std::string& subnetCidr);

  // Leases the lowest free address (never network, gateway or broadcast);
  // the lease file holds `owner`. Thread- and process-safe.
  // Fails: kUnavailable when the subnet is exhausted, kSystem on I/O errors.
  Result<Lease> allocate(const std::string& owner);

  // Recovery: confirms that `address` is leased to `owner` (re-creating the
  // lease if the file is missing). Fails: kInvalidArgument if the address is
  // not a host address of the subnet, kAlreadyExists if someone else owns it.
  Result<Lease> reclaim(const std::string& address, const std::string& owner);

  // Gives the address back. Idempotent (ok if not leased).
  Result<void> release(const std::string& address);

  const std::filesystem::path& dir() const { return dir_; }

 private:
  AddressPool(std::filesystem::path dir, uint32_t network, int prefix)
      : dir_(std::move(dir)), network_(network), prefix_(prefix) {}
  Lease leaseFor(uint32_t host) const;
  std::filesystem::path fileFor(uint32_t host) const;

  std::filesystem::path dir_;
  uint32_t network_ = 0;  // host byte order
  int prefix_ = 0;
};

}  // namespace s2z::agent
