// A conformance suite for backends: what gateway/backends/README.md says
// each object does with each frame, checked through the adapter alone
// (send, subscribe, unsubscribe), as a gateway would see it. It never looks
// at a backend's storage or objects, so any backend can run it unchanged.
//
// A backend runs it by providing a conformance_target and calling
// run_conformance (backend_conformance.cpp, library switchyard_conformance)
// from a test case; the test case body runs once per section of the suite,
// so the target is made anew, on fresh storage, for each:
//
//     TEST_CASE("my backend keeps the backend contract", "[conformance]") {
//         my_target target;  // a conformance_target on fresh storage
//         switchyard::test::run_conformance(target);
//     }
//
// The target runs its backend with the README's defaults where the suite
// depends on them: `rejoin_grace` 60 s on the target's clock, named rooms
// open to anyone, room and list limits of at least a few entries, passwords
// of 8 bytes and more; and lets an object idle for an hour of its clock
// leave memory. Accounts are made with account frames, as the operator
// commands make them.
//
// Waits are bounded (a missing reply or publication fails the test) and
// nothing sleeps to let something happen; only the hibernation check polls
// resident_objects(), with a deadline. A check that something was NOT
// published waits for a later publication of the same object instead: one
// object's publications reach a gateway in the order it made them.
#pragma once

#include "gateway/backends/adapter.hpp"

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace switchyard::test {

// What a backend gives the suite. Everything else goes through frames.
class conformance_target {
public:
    virtual ~conformance_target() = default;

    // The backend under test, on storage of its own; valid until restart().
    virtual gateway::backends::adapter& adapter() = 0;

    // Stops the backend, after it has applied what was sent to it, and
    // starts it again on the same storage, as a process restart would.
    // Subscriptions end with it.
    virtual void restart() = 0;

    // Moves the backend's clock (message times, grace periods, idleness)
    // forward.
    virtual void advance_clock(std::chrono::milliseconds d) = 0;

    // The objects that answer account_list, one per backend behind the
    // adapter: each lists the accounts it holds.
    virtual std::vector<std::string> directories() { return {"accounts:"}; }

    // How many objects the backend holds in memory, when it can tell: the
    // suite then checks that idle objects hibernate. Without it, the
    // hibernation checks only check that state survives the idle time.
    virtual std::optional<std::size_t> resident_objects() { return std::nullopt; }
};

// Runs the suite's sections against `target`, one per run of the calling
// test case (Catch2 sections).
void run_conformance(conformance_target& target);

}  // namespace switchyard::test
