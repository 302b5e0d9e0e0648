#pragma once
// The `sluice` policy of a simulation: the real controller, talking to the simulated world only
// through the real interfaces. The world's records go into accounting files (one per UTC day)
// that the real reader reads; the real policy decides; fragments are written to a directory;
// a simulated pmta "reloads" them, which sets what the world's VMTAs run at.

#include <memory>
#include <string>
#include <vector>

#include "controller/cycle.h"
#include "sim/policies.h"

namespace sluice::sim {

class SluicePolicy : public Policy {
 public:
  // `dir` must be an empty directory the run may fill (accounting files, fragments, database).
  // `policy` is what the controller decides with (the configured [policy]).
  SluicePolicy(const World& world, std::string dir, PolicyParams policy);
  ~SluicePolicy() override;

  std::string name() const override { return "sluice"; }
  std::vector<int> settings(const World& world) override;
  void observe(const World& world, const StepResult& step) override;
  std::uint64_t reloads() const override;

  // Every decision the controller made, in order.
  const std::vector<Decision>& decisions() const { return decisions_; }
  // The first error a cycle returned ("" when none): the run goes on without it deciding.
  const std::string& error() const { return error_; }

 private:
  struct Parts;
  void write_records(const World& world, const StepResult& step);

  std::string dir_;
  std::unique_ptr<Parts> parts_;
  std::vector<Decision> decisions_;
  std::string error_;
};

}  // namespace sluice::sim
