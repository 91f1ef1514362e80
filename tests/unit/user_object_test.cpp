// The embedded user object against gateway/backends/README.md, `user:<handle>`.
//
// Checks that something did NOT reach a subscriber use a later frame as a
// marker: frames from one object to another are delivered in the order the
// sending object made them, so when the marker is the next frame a
// subscriber gets, nothing was sent before it.
#include "embedded_fixture.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace Catch {
template <> struct StringMaker<switchyard::frame::frame> {
    static std::string convert(const switchyard::frame::frame& f) { return switchyard::frame::to_text(f); }
};
}  // namespace Catch

namespace {

using namespace switchyard;
using namespace switchyard::test;
using frame::error_code;
using frame::list;
using frame::status;

const std::string alice = "alice@example.com";
const std::string bob = "bob@example.com";
const std::string carol = "carol@example.com";
const std::string dave = "dave@example.com";
const std::string erin = "erin@example.com";

std::string user(const std::string& handle) { return "user:" + handle; }

frame::presence_set presence(status s, const std::string& endpoint = "ep-1") {
    frame::presence_set p;
    p.presence.state = s;
    p.presence.endpoint = endpoint;
    p.presence.capabilities = 0x50000000;
    return p;
}

// WebSocket endpoints: a user may have several at once (MSNP before 16 may not).
frame::hello hello(const std::string& who, const std::string& endpoint = "ep-1") {
    return frame::hello{frame::client_protocol::wsjson, 1, who, endpoint, "test", {}};
}

// hello, then a presence_set on the endpoint; returns the presence_set's
// replies (the initial burst, then the ack).
std::vector<frame::frame> sign_in(embedded_fixture& f, const std::string& who, status s = status::online,
                                  const std::string& endpoint = "ep-1") {
    as<frame::ack>(f.ask(who, user(who), hello(who, endpoint)));
    auto replies = f.request(who, user(who), presence(s, endpoint));
    as<frame::ack>(replies.back());
    return replies;
}

void set_status(embedded_fixture& f, const std::string& who, status s, const std::string& endpoint = "ep-1") {
    as<frame::ack>(f.ask(who, user(who), presence(s, endpoint)));
}

// A profile_set of the name, personal message and media, as WebSocket
// clients send it.
frame::profile_set profile(const std::string& name, const std::string& message = {}, const std::string& media = {}) {
    frame::profile_set p;
    p.fields = frame::profile_bits::display_name | frame::profile_bits::personal_message |
               frame::profile_bits::current_media;
    p.display_name = name;
    p.personal_message = message;
    p.current_media = media;
    return p;
}

frame::roster_change adding(list which, const std::string& handle, const std::string& group = {},
                            const std::string& name = {}) {
    return frame::roster_change{frame::change_op::add, which, handle, name, group, 0, {}, {}};
}

frame::roster_change removing(list which, const std::string& handle, const std::string& group = {}) {
    return frame::roster_change{frame::change_op::remove, which, handle, {}, group, 0, {}, {}};
}

frame::roster_change change(embedded_fixture& f, const std::string& owner, frame::roster_change rc) {
    return as<frame::roster_change>(f.ask(owner, user(owner), std::move(rc)));
}

frame::roster roster_of(embedded_fixture& f, const std::string& owner) {
    return as<frame::roster>(f.ask(owner, user(owner), frame::roster_get{}));
}

const frame::roster_entry* entry(const frame::roster& r, const std::string& handle) {
    const auto it = std::find_if(r.entries.begin(), r.entries.end(),
                                 [&](const frame::roster_entry& e) { return e.handle == handle; });
    return it == r.entries.end() ? nullptr : &*it;
}

frame::privacy_set privacy(frame::privacy_default p, frame::add_prompt a = frame::add_prompt::prompt) {
    return frame::privacy_set{p, a, 0};
}

frame::group_change group_op(frame::change_op op, const std::string& id, const std::string& name) {
    return frame::group_change{op, {id, name}, 0};
}

std::string add_group(embedded_fixture& f, const std::string& owner, const std::string& name) {
    return as<frame::group_change>(f.ask(owner, user(owner), group_op(frame::change_op::add, {}, name))).target.id;
}


frame::frame next(frame_queue& q) {
    auto f = q.pop();
    INFO("nothing was published");
    REQUIRE(f);
    return std::move(*f);
}

// The next published frame, which must be `about`'s presence.
frame::presence_info next_presence(frame_queue& q, const std::string& about) {
    const frame::frame f = next(q);
    const auto& u = as<frame::presence_update>(f);
    CHECK(f.sender == about);
    CHECK(u.user == about);
    CHECK_FALSE(u.initial);
    return u.presence;
}

frame::roster_change next_notice(frame_queue& q, const std::string& from) {
    const frame::frame f = next(q);
    const auto& r = as<frame::roster_change>(f);
    CHECK(f.sender == from);
    CHECK(r.which == list::reverse);
    CHECK(r.handle == from);
    return r;
}

bool uuid_shaped(const std::string& s) {
    if (s.size() != 36 || s[14] != '5') return false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
    }
    return true;
}

// Users Alice, Bob, Carol, Dave and Erin, with display names.
struct users_fixture : embedded_fixture {
    explicit users_fixture(embedded::options o = {}) : embedded_fixture(std::move(o)) {
        add_user(alice, "Alice");
        add_user(bob, "Bob");
        add_user(carol, "Carol");
        add_user(dave, "Dave");
        add_user(erin, "Erin");
    }
};

// Whether every object was evicted after `before` was read: read it before
// the request that wakes the object. The shard sweeps every
// hibernate_after/2 while idle; poll, bounded.
bool all_evicted_since(users_fixture& f, std::uint64_t before) {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    for (;;) {
        const auto s = f.be->stats();
        if (s.hibernations > before && s.resident == 0) return true;
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(1ms);
    }
}

}  // namespace

TEST_CASE("a user that does not exist answers every request with unknown_object") {
    users_fixture f;
    const std::string nobody = "nobody@example.com";
    CHECK(error_of(f.ask(nobody, user(nobody), hello(nobody))) == error_code::unknown_object);
    CHECK(error_of(f.ask(nobody, user(nobody), presence(status::online))) == error_code::unknown_object);
    CHECK(error_of(f.ask(nobody, user(nobody), frame::roster_get{})) == error_code::unknown_object);
    CHECK(error_of(f.ask(alice, user(nobody), frame::roster_get{})) == error_code::unknown_object);
    CHECK(error_of(f.ask(alice, user(alice), adding(list::forward, nobody))) == error_code::unknown_object);

    // The object that answered stays in memory; an account created since
    // (through it, as every account is) is found.
    f.create_account(nobody);
    CHECK(roster_of(f, nobody).version == 0);
}

TEST_CASE("only the owner may send requests to its object") {
    users_fixture f;
    CHECK(error_of(f.ask(bob, user(alice), frame::roster_get{})) == error_code::not_allowed);
    CHECK(error_of(f.ask(bob, user(alice), adding(list::block, carol))) == error_code::not_allowed);
    CHECK(error_of(f.ask(bob, user(alice), profile("Mallory"))) == error_code::not_allowed);
    CHECK(error_of(f.ask(bob, user(alice), hello(alice))) == error_code::not_allowed);
    // Notices are for objects, which never set corr.
    const frame::roster_change notice{frame::change_op::add, list::reverse, bob, {}, {}, 0, {}, {}};
    CHECK(error_of(f.ask(bob, user(alice), notice)) == error_code::not_allowed);

    const frame::roster r = roster_of(f, alice);
    CHECK(r.version == 0);
    CHECK(r.entries.empty());
    CHECK(r.display_name == "Alice");
}

TEST_CASE("roster_get merges the forward, allow and block lists with the reverse and pending lists") {
    users_fixture f;
    auto& alice_q = f.subscribe(user(alice));
    const std::string friends = add_group(f, alice, "Friends");
    change(f, alice, adding(list::forward, bob, friends));
    change(f, alice, adding(list::allow, bob));
    change(f, alice, adding(list::block, carol));
    // Bob and Dave put Alice on their forward lists (one at a time: their
    // objects may live on different shards).
    change(f, bob, adding(list::forward, alice));
    CHECK(next_notice(alice_q, bob).version == 5);
    change(f, dave, adding(list::forward, alice));
    CHECK(next_notice(alice_q, dave).version == 6);

    const frame::roster r = roster_of(f, alice);
    CHECK(r.version == 6);
    CHECK(r.privacy == frame::privacy_default::allow);
    CHECK(r.prompt == frame::add_prompt::prompt);
    CHECK(r.display_name == "Alice");
    REQUIRE(r.groups.size() == 1);
    CHECK(r.groups[0] == frame::group{friends, "Friends"});
    REQUIRE(r.entries.size() == 3);
    CHECK(r.entries[0].handle == bob);  // handle order
    CHECK(r.entries[1].handle == carol);
    CHECK(r.entries[2].handle == dave);

    const auto& b = r.entries[0];
    CHECK(b.lists == 11);  // FL AL RL: on the allow list, so not pending
    CHECK(b.display_name == "Bob");
    CHECK(b.groups == std::vector<std::string>{friends});
    CHECK(uuid_shaped(b.contact_id));
    const auto& c = r.entries[1];
    CHECK(c.lists == 4);
    CHECK(c.groups.empty());
    CHECK(uuid_shaped(c.contact_id));
    CHECK(c.contact_id != b.contact_id);
    const auto& d = r.entries[2];
    CHECK(d.lists == 24);  // RL PL
    CHECK(d.display_name == "Dave");
    CHECK(d.contact_id.empty());

    // Contact ids are stable per (owner, contact): the same after removal
    // and a new add, and different from the other side's.
    change(f, alice, removing(list::forward, bob));
    change(f, alice, removing(list::allow, bob));
    CHECK(entry(roster_of(f, alice), bob)->lists == 24);
    CHECK(change(f, alice, adding(list::forward, bob)).contact_id == b.contact_id);  // the reply names it too
    CHECK(entry(roster_of(f, alice), bob)->contact_id == b.contact_id);
    CHECK(entry(roster_of(f, bob), alice)->contact_id != b.contact_id);
}

TEST_CASE("adding to the forward list tells the contact; removing tells it again") {
    users_fixture f;
    auto& bob_q = f.subscribe(user(bob));

    const auto added = change(f, alice, adding(list::forward, bob));
    CHECK(added.op == frame::change_op::add);
    CHECK(added.which == list::forward);
    CHECK(added.handle == bob);
    CHECK(added.display_name == "Bob");  // the contact's own name when none is given
    CHECK(added.version == 1);

    const auto add_notice = next_notice(bob_q, alice);  // MSNP ADD 0 RL
    CHECK(add_notice.op == frame::change_op::add);
    CHECK(add_notice.display_name == "Alice");
    CHECK(add_notice.version == 1);  // Bob's list version

    const auto removed = change(f, alice, removing(list::forward, bob));
    CHECK(removed.op == frame::change_op::remove);
    CHECK(removed.version == 2);
    const auto rem_notice = next_notice(bob_q, alice);  // MSNP REM 0 RL
    CHECK(rem_notice.op == frame::change_op::remove);
    CHECK(rem_notice.version == 2);

    CHECK(roster_of(f, bob).version == 2);
    CHECK(roster_of(f, bob).entries.empty());
    CHECK(roster_of(f, alice).entries.empty());
}

TEST_CASE("the contact's object has the notice before the adder sees its reply") {
    // A client that has seen its reply and then acts on the contact (who
    // signs in and SYNs at once) must reach the contact's object behind the
    // notice: the roster asked for from inside the reply's sink, before any
    // other thread can run, already counts the notice's list version.
    users_fixture f;
    auto rosters = std::make_shared<frame_queue>();
    embedded::backend& be = *f.be;
    be.send(frame::frame{f.next_corr++, user(alice), alice, adding(list::forward, bob)},
            [&be, rosters](frame::frame) {
                be.send(frame::frame{1000, user(bob), bob, frame::roster_get{}},
                        [rosters](frame::frame r) { rosters->push(std::move(r)); });
            });
    const auto roster = rosters->pop();
    REQUIRE(roster);
    CHECK(as<frame::roster>(*roster).version == 1);
}

// One object's frames reach a gateway in the order the object made them:
// the notice it published while applying Alice's add comes before its reply
// to the roster_get that followed. With one shard the roster_get, sent from
// the reply's sink, is applied in the same batch as the notice. Were a
// batch's replies released before its publications, the reply would
// overtake the notice, and an MSNP session would show the notice twice: in
// its SYN reply and as a live ADD 0 RL after it.
TEST_CASE("a notice the object published before a reply reaches its subscriber first") {
    embedded::options o;
    o.shards = 1;
    users_fixture f(o);
    auto seen = std::make_shared<frame_queue>();  // what Bob's gateway gets, in order
    embedded::backend& be = *f.be;
    be.subscribe(user(bob), [seen](frame::frame p) { seen->push(std::move(p)); });
    be.send(frame::frame{f.next_corr++, user(alice), alice, adding(list::forward, bob)},
            [&be, seen](frame::frame) {
                be.send(frame::frame{1000, user(bob), bob, frame::roster_get{}},
                        [seen](frame::frame r) { seen->push(std::move(r)); });
            });
    const frame::frame first = next(*seen);
    const frame::frame second = next(*seen);
    INFO("first " << frame::to_text(first) << "\nsecond " << frame::to_text(second));
    CHECK(as<frame::roster_change>(first).which == list::reverse);
    CHECK(as<frame::roster>(second).version == 1);
}

TEST_CASE("list edits are checked") {
    embedded::options o;
    o.name_bytes = 16;
    users_fixture f(o);

    SECTION("handles are normalised, and must be handles") {
        CHECK(change(f, alice, adding(list::forward, "Bob@Example.COM")).handle == bob);
        CHECK(error_of(f.ask(alice, user(alice), adding(list::forward, "not a handle"))) == error_code::invalid_text);
        CHECK(error_of(f.ask(alice, user(alice), adding(list::allow, ""))) == error_code::invalid_text);
        CHECK(error_of(f.ask(alice, user(alice), adding(list::block, std::string(120, 'x') + "@example.com"))) ==
              error_code::oversize);
    }
    SECTION("already on the list, not on the list") {
        change(f, alice, adding(list::forward, bob));
        CHECK(error_of(f.ask(alice, user(alice), adding(list::forward, bob))) == error_code::already_on_list);
        CHECK(error_of(f.ask(alice, user(alice), removing(list::forward, carol))) == error_code::not_on_list);
        CHECK(roster_of(f, alice).version == 1);
        // Allow and block are settings: restating one succeeds and changes
        // nothing (msnp-reference 3.10).
        const auto unallowed = change(f, alice, removing(list::allow, bob));
        CHECK(unallowed.version == 1);
        CHECK(change(f, alice, removing(list::block, carol)).version == 1);
        change(f, alice, adding(list::block, carol));
        const auto reblocked = change(f, alice, adding(list::block, carol));
        CHECK(reblocked.version == 2);
        CHECK(reblocked.handle == carol);
        CHECK(entry(roster_of(f, alice), carol)->lists == 4);
        CHECK(roster_of(f, alice).version == 2);
    }
    SECTION("the owner, and the derived lists, cannot be edited") {
        CHECK(error_of(f.ask(alice, user(alice), adding(list::forward, alice))) == error_code::not_allowed);
        CHECK(error_of(f.ask(alice, user(alice), adding(list::reverse, bob))) == error_code::not_allowed);
        CHECK(error_of(f.ask(alice, user(alice), removing(list::pending, bob))) == error_code::not_allowed);
    }
    SECTION("display names are checked and stored") {
        CHECK(error_of(f.ask(alice, user(alice), adding(list::forward, bob, {}, std::string(17, 'n')))) ==
              error_code::oversize);
        CHECK(error_of(f.ask(alice, user(alice), adding(list::forward, bob, {}, "\xff"))) == error_code::invalid_text);
        CHECK(change(f, alice, adding(list::forward, bob, {}, "Bobby")).display_name == "Bobby");
        // Allow and block lists take users without an account too.
        CHECK(change(f, alice, adding(list::block, "spam@example.com")).display_name == "spam@example.com");
        const frame::roster r = roster_of(f, alice);
        CHECK(entry(r, bob)->display_name == "Bobby");
        CHECK(entry(r, "spam@example.com")->lists == 4);
    }
    SECTION("allow and block are exclusive") {
        change(f, alice, adding(list::allow, bob));
        CHECK(error_of(f.ask(alice, user(alice), adding(list::block, bob))) == error_code::not_allowed);
        change(f, alice, removing(list::allow, bob));
        change(f, alice, adding(list::block, bob));
        CHECK(error_of(f.ask(alice, user(alice), adding(list::allow, bob))) == error_code::not_allowed);
        CHECK(entry(roster_of(f, alice), bob)->lists == 4);
    }
}

TEST_CASE("each list holds max_list_entries contacts and there are max_groups groups") {
    embedded::options o;
    o.max_list_entries = 2;
    o.max_groups = 2;
    users_fixture f(o);
    change(f, alice, adding(list::forward, bob));
    change(f, alice, adding(list::forward, carol));
    CHECK(error_of(f.ask(alice, user(alice), adding(list::forward, dave))) == error_code::list_full);
    // The limit is per list.
    change(f, alice, adding(list::allow, bob));
    change(f, alice, adding(list::allow, dave));
    CHECK(error_of(f.ask(alice, user(alice), adding(list::allow, erin))) == error_code::list_full);
    change(f, alice, removing(list::forward, bob));
    change(f, alice, adding(list::forward, dave));

    add_group(f, alice, "One");
    add_group(f, alice, "Two");
    CHECK(error_of(f.ask(alice, user(alice), group_op(frame::change_op::add, {}, "Three"))) == error_code::list_full);
    CHECK(roster_of(f, alice).groups.size() == 2);
}

TEST_CASE("groups are added, renamed and removed, and hold forward-list contacts") {
    users_fixture f;
    const auto added =
        as<frame::group_change>(f.ask(alice, user(alice), group_op(frame::change_op::add, {}, "Friends")));
    const std::string friends = added.target.id;
    CHECK(added.target.name == "Friends");
    CHECK(added.version == 1);
    CHECK(uuid_shaped(friends));
    const std::string work = add_group(f, alice, "Work");
    CHECK(work != friends);

    CHECK(error_of(f.ask(alice, user(alice), group_op(frame::change_op::add, {}, "Friends"))) ==
          error_code::already_on_list);
    CHECK(error_of(f.ask(alice, user(alice), group_op(frame::change_op::add, {}, ""))) == error_code::invalid_text);
    CHECK(error_of(f.ask(alice, user(alice), group_op(frame::change_op::add, {}, std::string(184, 'g')))) ==
          error_code::oversize);
    CHECK(error_of(f.ask(alice, user(alice), group_op(frame::change_op::rename, "no-such-id", "X"))) ==
          error_code::not_on_list);
    CHECK(error_of(f.ask(alice, user(alice), group_op(frame::change_op::rename, friends, "Work"))) ==
          error_code::already_on_list);
    const auto renamed =
        as<frame::group_change>(f.ask(alice, user(alice), group_op(frame::change_op::rename, friends, "Pals")));
    CHECK(renamed.target == frame::group{friends, "Pals"});
    CHECK(renamed.version == 3);

    // Contacts join groups when added to the forward list, or later.
    CHECK(error_of(f.ask(alice, user(alice), adding(list::forward, bob, "no-such-id"))) == error_code::not_on_list);
    CHECK(error_of(f.ask(alice, user(alice), adding(list::allow, bob, friends))) == error_code::malformed);
    CHECK(change(f, alice, adding(list::forward, bob, friends)).group_id == friends);
    CHECK(error_of(f.ask(alice, user(alice), adding(list::forward, bob, friends))) == error_code::already_on_list);
    const auto in_work = change(f, alice, adding(list::forward, bob, work));
    CHECK(in_work.group_id == work);
    CHECK(in_work.version == 5);
    {
        const frame::roster r = roster_of(f, alice);
        CHECK(r.groups == std::vector<frame::group>{{friends, "Pals"}, {work, "Work"}});  // creation order
        auto expected = std::vector<std::string>{friends, work};
        std::sort(expected.begin(), expected.end());
        CHECK(entry(r, bob)->groups == expected);
        CHECK(entry(r, bob)->lists == 1);
    }

    // Out of one group: still on the forward list.
    CHECK(change(f, alice, removing(list::forward, bob, friends)).group_id == friends);
    CHECK(error_of(f.ask(alice, user(alice), removing(list::forward, bob, friends))) == error_code::not_on_list);
    CHECK(entry(roster_of(f, alice), bob)->groups == std::vector<std::string>{work});

    // Removing a group keeps its contacts.
    CHECK(error_of(f.ask(alice, user(alice), group_op(frame::change_op::remove, "no-such-id", {}))) ==
          error_code::not_on_list);
    const auto gone = as<frame::group_change>(f.ask(alice, user(alice), group_op(frame::change_op::remove, work, {})));
    CHECK(gone.target == frame::group{work, "Work"});
    const frame::roster r = roster_of(f, alice);
    CHECK(r.groups == std::vector<frame::group>{{friends, "Pals"}});
    CHECK(entry(r, bob)->groups.empty());
    CHECK(entry(r, bob)->lists == 1);
    CHECK(r.version == 7);
}

TEST_CASE("privacy_set stores both settings; restating the stored value succeeds without a change") {
    users_fixture f;
    using frame::add_prompt;
    using frame::privacy_default;
    // Setting the never-stored default stores it; restating it changes
    // nothing (msnp-reference 3.10, 4.3: never MSNP 218).
    const auto first = as<frame::privacy_set>(f.ask(alice, user(alice), privacy(privacy_default::allow)));
    CHECK(first.version == 1);
    const auto again = as<frame::privacy_set>(f.ask(alice, user(alice), privacy(privacy_default::allow)));
    CHECK(again.version == 1);
    CHECK(again.privacy == privacy_default::allow);
    const auto blp = as<frame::privacy_set>(f.ask(alice, user(alice), privacy(privacy_default::block)));
    CHECK(blp.privacy == privacy_default::block);
    CHECK(blp.version == 2);
    const auto gtc =
        as<frame::privacy_set>(f.ask(alice, user(alice), privacy(privacy_default::block, add_prompt::none)));
    CHECK(gtc.prompt == add_prompt::none);
    CHECK(gtc.version == 3);
    CHECK(as<frame::privacy_set>(f.ask(alice, user(alice), privacy(privacy_default::block, add_prompt::none)))
              .version == 3);

    const frame::roster r = roster_of(f, alice);
    CHECK(r.privacy == privacy_default::block);
    CHECK(r.prompt == add_prompt::none);
    CHECK(r.version == 3);
}

TEST_CASE("watchers with the owner on their forward list see its presence; others get nothing") {
    users_fixture f;
    change(f, bob, adding(list::forward, alice));
    auto& bob_q = f.subscribe(user(bob));
    auto& carol_q = f.subscribe(user(carol));

    sign_in(f, alice);
    const auto online = next_presence(bob_q, alice);  // MSNP NLN
    CHECK(online.state == status::online);
    CHECK(online.display_name == "Alice");
    CHECK(online.endpoint == "ep-1");
    CHECK(online.capabilities == 0x50000000);

    set_status(f, alice, status::busy);
    CHECK(next_presence(bob_q, alice).state == status::busy);
    // Restating the same presence changes nothing anyone sees.
    set_status(f, alice, status::busy);
    set_status(f, alice, status::away);
    CHECK(next_presence(bob_q, alice).state == status::away);

    // Carol does not have Alice on her forward list: her first frame is the
    // notice of Alice adding her, not any presence of Alice's.
    change(f, alice, adding(list::forward, carol));
    CHECK(as<frame::roster_change>(next(carol_q)).which == list::reverse);
}

TEST_CASE("blocking hides the owner at once; unblocking shows it again") {
    users_fixture f;
    change(f, bob, adding(list::forward, alice));
    auto& bob_q = f.subscribe(user(bob));
    sign_in(f, alice);
    CHECK(next_presence(bob_q, alice).state == status::online);

    change(f, alice, adding(list::block, bob));
    CHECK(next_presence(bob_q, alice).state == status::offline);  // MSNP FLN
    set_status(f, alice, status::away);  // not shown to Bob
    change(f, alice, removing(list::block, bob));
    CHECK(next_presence(bob_q, alice).state == status::away);

    // An allow-list entry changes nothing while privacy allows everyone.
    change(f, alice, adding(list::allow, bob));
    set_status(f, alice, status::online);
    CHECK(next_presence(bob_q, alice).state == status::online);
}

TEST_CASE("with privacy block only the allow list sees the owner") {
    users_fixture f;
    using frame::add_prompt;
    using frame::privacy_default;
    change(f, bob, adding(list::forward, alice));
    change(f, carol, adding(list::forward, alice));
    change(f, alice, adding(list::allow, carol));
    auto& bob_q = f.subscribe(user(bob));
    auto& carol_q = f.subscribe(user(carol));
    sign_in(f, alice);
    CHECK(next_presence(bob_q, alice).state == status::online);
    CHECK(next_presence(carol_q, alice).state == status::online);

    as<frame::privacy_set>(f.ask(alice, user(alice), privacy(privacy_default::block)));
    CHECK(next_presence(bob_q, alice).state == status::offline);
    set_status(f, alice, status::busy);
    CHECK(next_presence(carol_q, alice).state == status::busy);  // nothing came before it

    as<frame::privacy_set>(f.ask(alice, user(alice), privacy(privacy_default::allow)));
    CHECK(next_presence(bob_q, alice).state == status::busy);  // nothing came before it

    // Initial bursts and adds follow the same rule.
    as<frame::privacy_set>(f.ask(alice, user(alice), privacy(privacy_default::block)));
    change(f, alice, adding(list::forward, bob));
    change(f, alice, adding(list::forward, carol));
    CHECK(sign_in(f, bob).size() == 1);  // the ack: Bob sees Alice offline
    CHECK(sign_in(f, carol).size() == 2);
}

TEST_CASE("invisible shows as offline and going visible shows the owner again") {
    users_fixture f;
    change(f, bob, adding(list::forward, alice));
    auto& bob_q = f.subscribe(user(bob));
    sign_in(f, alice);
    CHECK(next_presence(bob_q, alice).state == status::online);

    set_status(f, alice, status::invisible);
    const auto hidden = next_presence(bob_q, alice);
    CHECK(hidden.state == status::offline);
    CHECK(hidden.endpoint.empty());
    // Offline to offline is not news.
    as<frame::ack>(f.ask(alice, user(alice), profile("Hidden Alice")));
    as<frame::ack>(f.ask(alice, user(alice), hello(alice, "ep-2")));
    set_status(f, alice, status::online);
    const auto shown = next_presence(bob_q, alice);
    CHECK(shown.state == status::online);
    CHECK(shown.display_name == "Hidden Alice");
}

TEST_CASE("the first presence_set of an endpoint replies with the initial burst") {
    users_fixture f;
    for (const auto& c : {bob, carol, dave, erin}) change(f, alice, adding(list::forward, c));
    as<frame::ack>(f.ask(bob, user(bob), profile("Bob B.", "at lunch")));
    sign_in(f, bob, status::out_to_lunch);
    sign_in(f, carol);
    change(f, carol, adding(list::block, alice));  // Alice does not see Carol
    sign_in(f, dave, status::invisible);           // nor Dave; Erin is offline
    const std::string frank = "frank@example.com";
    f.add_user(frank);
    sign_in(f, frank);  // online, but not on Alice's forward list

    const auto replies = sign_in(f, alice);
    REQUIRE(replies.size() == 2);  // MSNP ILN for Bob, then the ack
    const auto& iln = as<frame::presence_update>(replies[0]);
    CHECK(iln.user == bob);
    CHECK(iln.initial);
    CHECK(iln.presence.state == status::out_to_lunch);
    CHECK(iln.presence.display_name == "Bob B.");
    CHECK(iln.presence.personal_message == "at lunch");

    // Later changes are only acknowledged; a new endpoint gets its own burst.
    CHECK(f.request(alice, user(alice), presence(status::busy)).size() == 1);
    CHECK(sign_in(f, alice, status::online, "ep-2").size() == 2);
    // A new session on a known endpoint starts over.
    CHECK(sign_in(f, alice, status::online, "ep-1").size() == 2);
}

TEST_CASE("adding a contact the owner sees online brings its presence before the reply") {
    users_fixture f;
    sign_in(f, bob, status::busy);
    const auto replies = f.request(alice, user(alice), adding(list::forward, bob));
    REQUIRE(replies.size() == 2);
    CHECK(as<frame::roster_change>(replies[1]).handle == bob);
    const auto& nln = as<frame::presence_update>(replies[0]);
    CHECK(nln.user == bob);
    CHECK_FALSE(nln.initial);
    CHECK(nln.presence.state == status::busy);

    // Offline contacts, and blocked ones, bring only the reply.
    CHECK(f.request(alice, user(alice), adding(list::forward, carol)).size() == 1);
    sign_in(f, dave);
    change(f, dave, adding(list::block, alice));
    CHECK(f.request(alice, user(alice), adding(list::forward, dave)).size() == 1);
}

TEST_CASE("profile_set reaches only the watchers who see the owner") {
    users_fixture f;
    change(f, bob, adding(list::forward, alice));
    change(f, carol, adding(list::forward, alice));
    auto& bob_q = f.subscribe(user(bob));
    auto& carol_q = f.subscribe(user(carol));
    sign_in(f, alice);
    CHECK(next_presence(bob_q, alice).state == status::online);
    CHECK(next_presence(carol_q, alice).state == status::online);
    change(f, alice, adding(list::block, carol));
    CHECK(next_presence(carol_q, alice).state == status::offline);

    as<frame::ack>(f.ask(alice, user(alice), profile("Alice A.", "hello", "music")));
    const auto seen = next_presence(bob_q, alice);  // MSNP NLN with the new name, UBX
    CHECK(seen.state == status::online);
    CHECK(seen.display_name == "Alice A.");
    CHECK(seen.personal_message == "hello");
    CHECK(seen.current_media == "music");

    change(f, alice, removing(list::block, carol));
    const auto unblocked = next_presence(carol_q, alice);  // nothing came before it
    CHECK(unblocked.display_name == "Alice A.");
    CHECK(unblocked.personal_message == "hello");
    CHECK(roster_of(f, alice).display_name == "Alice A.");

    // Checked like every text; an empty name falls back to the handle.
    CHECK(error_of(f.ask(alice, user(alice), profile("Alice", std::string(1025, 'p')))) ==
          error_code::oversize);
    CHECK(error_of(f.ask(alice, user(alice), profile("\xc3"))) == error_code::invalid_text);
    as<frame::ack>(f.ask(alice, user(alice), profile({})));
    CHECK(next_presence(bob_q, alice).display_name == alice);
}

TEST_CASE("names, personal messages and group names hold no control characters") {
    users_fixture f;
    for (const std::string& bad : {std::string("Al\0ice", 6), std::string("Alice\r\nOUT"), std::string("\x1b[31mAlice"),
                                  std::string("Alice\a"), std::string("Alice\x7f")}) {
        INFO(bad);
        CHECK(error_of(f.ask(alice, user(alice), profile(bad))) == error_code::invalid_text);
        frame::profile_set psm;
        psm.fields = frame::profile_bits::personal_message;
        psm.personal_message = bad;
        CHECK(error_of(f.ask(alice, user(alice), psm)) == error_code::invalid_text);
        CHECK(error_of(f.ask(alice, user(alice), frame::group_change{frame::change_op::add, {"", bad}, 0})) ==
              error_code::invalid_text);
    }
    // Tabs are controls too; plain text and any Unicode letter pass.
    CHECK(error_of(f.ask(alice, user(alice), profile("Alice\tA."))) == error_code::invalid_text);
    as<frame::ack>(f.ask(alice, user(alice), profile("Alice \xe2\x98\x83 Liddell")));
}

TEST_CASE("profile_set changes only the fields it names") {
    users_fixture f;
    change(f, bob, adding(list::forward, alice));
    auto& bob_q = f.subscribe(user(bob));
    sign_in(f, alice);
    CHECK(next_presence(bob_q, alice).state == status::online);
    as<frame::ack>(f.ask(alice, user(alice), profile("Alice", "hello", "music")));
    CHECK(next_presence(bob_q, alice).personal_message == "hello");

    // A rename (MSNP REA, PRP MFN) keeps the personal message and media.
    frame::profile_set rename;
    rename.fields = frame::profile_bits::display_name;
    rename.display_name = "Alice A.";
    as<frame::ack>(f.ask(alice, user(alice), rename));
    const frame::frame renamed = next(bob_q);
    const auto& update = as<frame::presence_update>(renamed);
    CHECK(update.changed == frame::profile_bits::display_name);
    CHECK(update.presence.display_name == "Alice A.");
    CHECK(update.presence.personal_message == "hello");
    CHECK(update.presence.current_media == "music");

    // Coming back online brings the personal message and media along; a
    // status change alone does not.
    set_status(f, alice, status::invisible);
    CHECK(as<frame::presence_update>(next(bob_q)).changed == frame::profile_bits::status);
    set_status(f, alice, status::online);
    CHECK(as<frame::presence_update>(next(bob_q)).changed ==
          (frame::profile_bits::status | frame::profile_bits::personal_message | frame::profile_bits::current_media));
    set_status(f, alice, status::away);
    CHECK(as<frame::presence_update>(next(bob_q)).changed == frame::profile_bits::status);

    frame::profile_set nothing;
    CHECK(error_of(f.ask(alice, user(alice), nothing)) == error_code::malformed);
    frame::profile_set status_bit = rename;
    status_bit.fields |= frame::profile_bits::status;
    CHECK(error_of(f.ask(alice, user(alice), status_bit)) == error_code::malformed);
}

TEST_CASE("phone numbers are the owner's to set and show to contacts it lets see it") {
    users_fixture f;
    change(f, bob, adding(list::forward, alice));
    change(f, carol, adding(list::forward, alice));
    change(f, alice, adding(list::block, carol));
    change(f, dave, adding(list::allow, alice));  // on Dave's AL, not his FL: no phones
    auto& bob_q = f.subscribe(user(bob));
    sign_in(f, alice);
    CHECK(next_presence(bob_q, alice).state == status::online);

    frame::profile_set p;
    p.fields = frame::profile_bits::phone_home | frame::profile_bits::mobile_pageable |
               frame::profile_bits::mobile_device;
    p.phones.home = "+1 555 0100";
    p.phones.pageable = true;
    p.mobile_device = true;
    p.phones.work = "ignored: not named in fields";
    as<frame::ack>(f.ask(alice, user(alice), p));
    const frame::frame f1 = next(bob_q);
    const auto& update = as<frame::presence_update>(f1);
    CHECK(update.changed == (frame::profile_bits::phone_home | frame::profile_bits::mobile_pageable));
    CHECK(update.presence.phones == frame::phones{"+1 555 0100", {}, {}, true});

    // A forward-list add brings the contact's phones, when it lets the adder see them.
    CHECK(change(f, erin, adding(list::forward, alice)).phones.home == "+1 555 0100");
    change(f, carol, removing(list::forward, alice));
    CHECK(change(f, carol, adding(list::forward, alice)).phones == frame::phones{});

    const auto own = roster_of(f, alice);
    CHECK(own.phones == frame::phones{"+1 555 0100", {}, {}, true});
    CHECK(own.mobile_device);
    const auto bob_roster = roster_of(f, bob);
    const auto* seen_by_bob = entry(bob_roster, alice);
    REQUIRE(seen_by_bob);
    CHECK(seen_by_bob->phones.home == "+1 555 0100");
    const auto carol_roster = roster_of(f, carol);
    const auto* seen_by_carol = entry(carol_roster, alice);  // blocked
    REQUIRE(seen_by_carol);
    CHECK(seen_by_carol->phones == frame::phones{});
    const auto dave_roster = roster_of(f, dave);
    const auto* seen_by_dave = entry(dave_roster, alice);
    REQUIRE(seen_by_dave);
    CHECK(seen_by_dave->phones == frame::phones{});

    // Cleared by an empty number; kept across hibernation.
    frame::profile_set clear;
    clear.fields = frame::profile_bits::phone_home;
    as<frame::ack>(f.ask(alice, user(alice), clear));
    CHECK(next_presence(bob_q, alice).phones == frame::phones{{}, {}, {}, true});
    f.restart();
    CHECK(roster_of(f, alice).phones == frame::phones{{}, {}, {}, true});

    frame::profile_set too_long;
    too_long.fields = frame::profile_bits::phone_work;
    too_long.phones.work = std::string(96, '5');
    CHECK(error_of(f.ask(alice, user(alice), too_long)) == error_code::oversize);
}

TEST_CASE("with durability full, only endpoint changes commit without waiting for the disk") {
    users_fixture f;
    f.opt.sync = embedded::durability::full;
    f.restart();
    const auto before = f.be->stats();  // no watchers: each request is one batch
    sign_in(f, alice);                                              // hello, presence_set
    as<frame::ack>(f.ask(alice, user(alice), profile("Alice A.")));  // a profile is kept
    as<frame::ack>(f.ask(alice, user(alice), frame::bye{error_code::internal, true, {}, "ep-1"}));
    const auto after = f.be->stats();
    CHECK(after.commits - before.commits == 4);
    CHECK(after.unsynced_commits - before.unsynced_commits == 3);
    CHECK(roster_of(f, alice).display_name == "Alice A.");
}

TEST_CASE("a schema version 1 database gains the phone and session columns and keeps its users") {
    users_fixture f;
    change(f, bob, adding(list::forward, alice));
    f.be.reset();
    {
        embedded::database db(f.opt.file, embedded::durability::normal);
        for (const char* column : {"phone_home", "phone_work", "phone_mobile", "mobile_pageable", "mobile_device"}) {
            db.exec(std::string("ALTER TABLE users DROP COLUMN ") + column);
        }
        // And what schema versions 3 and 4 added.
        db.exec("ALTER TABLE rooms DROP COLUMN epoch");
        db.exec("ALTER TABLE room_endpoints DROP COLUMN grace_until_ms");
        db.exec("ALTER TABLE messages DROP COLUMN withheld");
        db.exec("ALTER TABLE presence DROP COLUMN single_session");
        db.exec("DROP TABLE reverse_contacts");
        db.exec("DROP TABLE outbox");
        db.exec("DROP TABLE contact_views");
        db.exec("PRAGMA user_version = 1");
        REQUIRE_FALSE(db.failed());
    }
    f.restart();
    const auto r = roster_of(f, bob);
    REQUIRE(entry(r, alice));
    REQUIRE(entry(roster_of(f, alice), bob));
    CHECK(entry(roster_of(f, alice), bob)->lists == 24);  // RL PL, from Bob's forward list
    CHECK(r.phones == frame::phones{});
    frame::profile_set p;
    p.fields = frame::profile_bits::phone_mobile;
    p.phones.mobile = "555 0199";
    as<frame::ack>(f.ask(alice, user(alice), p));
    CHECK(roster_of(f, alice).phones.mobile == "555 0199");
}

TEST_CASE("the roster carries the owner's own personal message and current media") {
    users_fixture f;
    const auto before = roster_of(f, alice);
    CHECK(before.personal_message == std::vector<std::string>{""});
    CHECK(before.current_media == std::vector<std::string>{""});
    as<frame::ack>(f.ask(alice, user(alice), profile("Alice", "at lunch", "Song - Band")));
    const auto after = roster_of(f, alice);
    CHECK(after.display_name == "Alice");
    CHECK(after.personal_message == std::vector<std::string>{"at lunch"});
    CHECK(after.current_media == std::vector<std::string>{"Song - Band"});
    f.restart();
    CHECK(roster_of(f, alice).personal_message == std::vector<std::string>{"at lunch"});
}

TEST_CASE("presence is the most available endpoint's; the last bye shows the owner offline") {
    users_fixture f;
    change(f, bob, adding(list::forward, alice));
    auto& bob_q = f.subscribe(user(bob));

    sign_in(f, alice, status::away, "ep-1");
    CHECK(next_presence(bob_q, alice).state == status::away);
    sign_in(f, alice, status::online, "ep-2");
    const auto best = next_presence(bob_q, alice);
    CHECK(best.state == status::online);
    CHECK(best.endpoint == "ep-2");

    as<frame::ack>(f.ask(alice, user(alice), frame::bye{error_code::internal, true, {}, "ep-2"}));
    CHECK(next_presence(bob_q, alice).state == status::away);
    as<frame::ack>(f.ask(alice, user(alice), frame::bye{error_code::internal, true, {}, "no-such-endpoint"}));
    as<frame::ack>(f.ask(alice, user(alice), hello(alice, "ep-3")));  // offline until it sets presence
    as<frame::ack>(f.ask(alice, user(alice), frame::bye{error_code::internal, true, {}, "ep-1"}));
    CHECK(next_presence(bob_q, alice).state == status::offline);
}

TEST_CASE("presence requests are checked") {
    users_fixture f;
    CHECK(error_of(f.ask(alice, user(alice), hello(bob))) == error_code::not_allowed);
    CHECK(error_of(f.ask(alice, user(alice), hello(alice, ""))) == error_code::malformed);
    CHECK(error_of(f.ask(alice, user(alice), presence(status::offline))) == error_code::malformed);
    CHECK(error_of(f.ask(alice, user(alice), presence(status::online, std::string(129, 'e')))) == error_code::oversize);
    auto bad_object = presence(status::online);
    bad_object.presence.msn_object = "\xed\xa0\x80";  // a UTF-8 surrogate
    CHECK(error_of(f.ask(alice, user(alice), bad_object)) == error_code::invalid_text);
    CHECK(error_of(f.ask(alice, user(alice), frame::room_nudge{})) == error_code::unsupported);
}

TEST_CASE("frames from other users' objects are passed on only as their senders' own statements") {
    users_fixture f;
    auto& alice_q = f.subscribe(user(alice));

    // A notice about someone else than its sender, and one without the
    // sender's list version (no object sends those), are dropped.
    f.tell(carol, user(alice), frame::roster_change{frame::change_op::add, list::reverse, bob, "Bob", {}, 7, {}, {}});
    f.tell(bob, user(alice), frame::roster_change{frame::change_op::add, list::reverse, bob, "Bob", {}, 0, {}, {}});
    // Alice does not watch Bob: his presence is not hers to relay.
    f.tell(bob, user(alice), frame::presence_update{bob, false, presence(status::online).presence, 0});
    change(f, bob, adding(list::forward, alice));
    const auto notice = next_notice(alice_q, bob);
    CHECK(notice.op == frame::change_op::add);
    CHECK(notice.version == 1);  // the dropped notices took no version

    // Invitations come from rooms on behalf of the inviter, unless blocked.
    f.tell(bob, user(alice), frame::room_invite{alice, "Bob", "room:r1"});
    const frame::frame rng = next(alice_q);
    CHECK(rng.sender == bob);
    CHECK(as<frame::room_invite>(rng).room == "room:r1");
    change(f, alice, adding(list::block, bob));
    f.tell(bob, user(alice), frame::room_invite{alice, "Bob", "room:r2"});
    f.tell(carol, user(alice), frame::room_invite{alice, "Carol", "room:r3"});
    const frame::frame next_rng = next(alice_q);
    CHECK(next_rng.sender == carol);
    CHECK(as<frame::room_invite>(next_rng).room == "room:r3");
}

TEST_CASE("lists, versions and privacy survive a restart; presence does not") {
    users_fixture f;
    auto& alice_q = f.subscribe(user(alice));
    const std::string friends = add_group(f, alice, "Friends");
    change(f, alice, adding(list::forward, bob, friends, "Bobby"));
    change(f, alice, adding(list::block, carol));
    as<frame::privacy_set>(f.ask(alice, user(alice), privacy(frame::privacy_default::block, frame::add_prompt::none)));
    change(f, bob, adding(list::forward, alice));
    next_notice(alice_q, bob);
    sign_in(f, alice);
    const frame::roster before = roster_of(f, alice);
    CHECK(before.version == 5);
    CHECK(entry(before, bob)->lists == 25);  // FL RL PL

    f.restart();
    const frame::roster after = roster_of(f, alice);
    CHECK(after == before);
    CHECK(as<frame::privacy_set>(f.ask(alice, user(alice), privacy(frame::privacy_default::block, frame::add_prompt::none)))
              .version == 5);  // restated after the restart: still stored, so no change
    CHECK(error_of(f.ask(alice, user(alice), group_op(frame::change_op::add, {}, "Friends"))) ==
          error_code::already_on_list);

    // Alice's endpoint went with the old process: Bob, whom she now allows,
    // sees her offline, and her next presence_set on it is a first one.
    change(f, alice, adding(list::allow, bob));
    CHECK(sign_in(f, bob).size() == 1);
    CHECK(f.request(alice, user(alice), presence(status::online)).size() == 2);
}

TEST_CASE("state and endpoints survive hibernation") {
    embedded::options o;
    o.hibernate_after = std::chrono::milliseconds(1);
    users_fixture f(o);
    const auto evicted_since = [&](std::uint64_t before) { return all_evicted_since(f, before); };

    auto& alice_q = f.subscribe(user(alice));
    auto& bob_q = f.subscribe(user(bob));
    change(f, bob, adding(list::forward, alice));
    next_notice(alice_q, bob);
    const std::string friends = add_group(f, alice, "Friends");
    change(f, alice, adding(list::forward, bob, friends));
    next_notice(bob_q, alice);
    change(f, alice, adding(list::allow, carol));
    sign_in(f, bob);
    const auto burst = sign_in(f, alice, status::busy);
    CHECK(burst.size() == 2);
    CHECK(next_presence(bob_q, alice).state == status::busy);

    auto mark = f.be->stats().hibernations;
    const frame::roster before = roster_of(f, alice);
    REQUIRE(evicted_since(mark));
    mark = f.be->stats().hibernations;
    CHECK(roster_of(f, alice) == before);
    REQUIRE(evicted_since(mark));

    // The endpoint is remembered: not a first presence_set, and the
    // owner's presence is still known when it goes.
    mark = f.be->stats().hibernations;
    CHECK(f.request(alice, user(alice), presence(status::busy)).size() == 1);
    REQUIRE(evicted_since(mark));
    as<frame::ack>(f.ask(alice, user(alice), frame::bye{error_code::internal, true, {}, "ep-1"}));
    CHECK(next_presence(bob_q, alice).state == status::offline);
}

TEST_CASE("a single-session login signs out the user's other single-session endpoints, and only those") {
    embedded::options o;
    o.hibernate_after = std::chrono::milliseconds(1);
    users_fixture f(o);
    auto& alice_q = f.subscribe(user(alice));
    const std::vector<std::string> single{std::string(frame::capability::single_session)};
    // A browser session first: no single-session login ever signs it out.
    as<frame::ack>(f.ask(alice, user(alice), frame::hello{frame::client_protocol::wsjson, 1, alice, "web-1", "page", {}}));
    frame::hello first{frame::client_protocol::msnp, 12, alice, "ep-1", "MSNMSGR", single};
    as<frame::ack>(f.ask(alice, user(alice), first));
    frame::hello second{frame::client_protocol::msnp, 12, alice, "ep-2", "MSNMSGR", single};
    as<frame::ack>(f.ask(alice, user(alice), second));
    const auto booted = next(alice_q);
    const auto& b = as<frame::bye>(booted);
    CHECK(b.endpoint == "ep-1");
    CHECK_FALSE(b.normal);

    // Several points of presence coexist with each other and with ep-2; a
    // second browser session signs out nobody.
    as<frame::ack>(f.ask(alice, user(alice), frame::hello{frame::client_protocol::msnp, 16, alice, "ep-3", "WLM", {}}));
    as<frame::ack>(f.ask(alice, user(alice), frame::hello{frame::client_protocol::msnp, 18, alice, "ep-4", "WLM", {}}));
    as<frame::ack>(f.ask(alice, user(alice), frame::hello{frame::client_protocol::wsjson, 1, alice, "web-2", "page", {}}));
    // Read before the request that wakes the object last (see all_evicted_since).
    const auto mark = f.be->stats().hibernations;
    as<frame::roster>(f.ask(alice, user(alice), frame::roster_get{}));  // everything above is published by now
    CHECK(alice_q.size() == 0);

    // The flag survives hibernation: ep-2 is still the one a new login replaces.
    REQUIRE(all_evicted_since(f, mark));
    as<frame::ack>(f.ask(alice, user(alice), frame::hello{frame::client_protocol::msnp, 7, alice, "ep-5", "MSMSGS", single}));
    CHECK(as<frame::bye>(next(alice_q)).endpoint == "ep-2");
    as<frame::roster>(f.ask(alice, user(alice), frame::roster_get{}));
    CHECK(alice_q.size() == 0);
}

TEST_CASE("a contact on the forward list can be renamed by its owner") {
    users_fixture f;
    change(f, alice, adding(list::forward, bob));
    const auto version = roster_of(f, alice).version;
    frame::roster_change rename{frame::change_op::rename, list::forward, bob, "Bobby", {}, 0, {}, {}};
    const auto reply = as<frame::roster_change>(f.ask(alice, user(alice), rename));
    CHECK(reply.display_name == "Bobby");
    CHECK(reply.version == version + 1);
    const auto r = roster_of(f, alice);
    const auto it = std::find_if(r.entries.begin(), r.entries.end(), [&](const auto& e) { return e.handle == bob; });
    REQUIRE(it != r.entries.end());
    CHECK(it->display_name == "Bobby");
    frame::roster_change stranger{frame::change_op::rename, list::forward, carol, "Caz", {}, 0, {}, {}};
    CHECK(error_of(f.ask(alice, user(alice), stranger)) == error_code::not_on_list);
}

// ---------------------------------------------------------------- the reverse-list exchange

namespace {

std::int64_t count_rows(embedded_fixture& f, const std::string& sql) {
    embedded::database db(f.opt.file, embedded::durability::normal);
    auto& q = db.prepare(sql);
    q.bind();
    const std::int64_t n = q.step() ? q.integer(0) : -1;
    q.run();
    return n;
}

// Acknowledgements travel after the notices they answer, to another shard:
// poll, bounded, until every outbox row is gone.
bool outbox_empties(embedded_fixture& f) {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (count_rows(f, "SELECT count(*) FROM outbox") != 0) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(1ms);
    }
    return true;
}

// What a notice from `from`'s object would say, sent with `from` as sender.
void reverse_notice(embedded_fixture& f, const std::string& from, const std::string& to, frame::change_op op,
                    std::uint64_t version) {
    f.tell(from, user(to), frame::roster_change{op, list::reverse, from, "Notice", {}, version, {}, {}});
}

void exec(embedded_fixture& f, const std::string& sql) {
    embedded::database db(f.opt.file, embedded::durability::normal);
    db.exec(sql);
    INFO(sql << ": " << (db.failed() ? db.error() : ""));
    REQUIRE_FALSE(db.failed());
}

}  // namespace

TEST_CASE("the reverse list is the owner's own rows, written only from its contacts' notices") {
    users_fixture f;
    auto& alice_q = f.subscribe(user(alice));
    auto& dave_q = f.subscribe(user(dave));
    change(f, bob, adding(list::forward, alice));
    next_notice(alice_q, bob);
    CHECK(count_rows(f, "SELECT count(*) FROM reverse_contacts WHERE owner = 'alice@example.com' AND "
                        "contact = 'bob@example.com' AND listed = 1 AND display_name = 'Bob' AND version = 1") == 1);
    // Alice's object acknowledged the notice, and Bob's forgot it.
    CHECK(outbox_empties(f));

    // A forward-list row of Dave's that no notice announced is not Alice's
    // to read: she does not list him, and does not show him her presence.
    exec(f, "INSERT INTO contacts (owner, contact, lists, display_name, contact_id) "
            "VALUES ('dave@example.com', 'alice@example.com', 1, 'Alice', 'c1')");
    const auto r = roster_of(f, alice);
    REQUIRE(r.entries.size() == 1);
    CHECK(r.entries[0].handle == bob);
    CHECK(r.entries[0].lists == 24);  // RL PL
    CHECK(r.entries[0].display_name == "Bob");
    auto& bob_q = f.subscribe(user(bob));
    sign_in(f, alice);
    CHECK(next_presence(bob_q, alice).state == status::online);
    change(f, carol, adding(list::forward, dave));  // marker: the next frame Dave's object publishes
    CHECK(next_notice(dave_q, carol).op == frame::change_op::add);
}

TEST_CASE("a repeated or overtaken reverse-list notice changes nothing") {
    users_fixture f;
    auto& alice_q = f.subscribe(user(alice));
    change(f, bob, adding(list::forward, alice));  // Bob's list version 1
    CHECK(next_notice(alice_q, bob).version == 1);
    const auto before = roster_of(f, alice);

    // The same notice again, as a resend after a crash brings it.
    reverse_notice(f, bob, alice, frame::change_op::add, 1);
    CHECK(roster_of(f, alice) == before);
    change(f, bob, removing(list::forward, alice));  // Bob's list version 2
    const auto removed = next_notice(alice_q, bob);  // the repeat published nothing before it
    CHECK(removed.op == frame::change_op::remove);
    CHECK(removed.version == 2);  // and took no version
    CHECK(entry(roster_of(f, alice), bob) == nullptr);

    // Older notices arriving after a newer one: overtaken, whatever they say.
    reverse_notice(f, bob, alice, frame::change_op::add, 1);
    reverse_notice(f, bob, alice, frame::change_op::remove, 2);
    change(f, carol, adding(list::forward, alice));  // marker
    CHECK(next_notice(alice_q, carol).version == 3);
    CHECK(entry(roster_of(f, alice), bob) == nullptr);

    // Reordered: the newer removal first, then the older add. The add is
    // dropped; the removal changed nothing Alice had, so nothing is published.
    reverse_notice(f, dave, alice, frame::change_op::remove, 5);
    reverse_notice(f, dave, alice, frame::change_op::add, 4);
    change(f, erin, adding(list::forward, alice));  // marker
    CHECK(next_notice(alice_q, erin).version == 4);
    const auto after = roster_of(f, alice);
    CHECK(entry(after, dave) == nullptr);
    CHECK(after.version == 4);

    // In order, each applies once.
    reverse_notice(f, dave, alice, frame::change_op::add, 6);
    reverse_notice(f, dave, alice, frame::change_op::add, 6);
    reverse_notice(f, dave, alice, frame::change_op::remove, 7);
    CHECK(next_notice(alice_q, dave).op == frame::change_op::add);
    CHECK(next_notice(alice_q, dave).op == frame::change_op::remove);
    CHECK(roster_of(f, alice).version == 6);
    CHECK(alice_q.size() == 0);
}

TEST_CASE("notices not acknowledged are sent again when the backend starts") {
    users_fixture f;
    // What a crash leaves between Bob's commit and Alice's: Bob's forward
    // list holds Alice, his outbox the notice, her reverse list nothing.
    f.be.reset();
    exec(f, "INSERT INTO contacts (owner, contact, lists, display_name, contact_id) "
            "VALUES ('bob@example.com', 'alice@example.com', 1, 'Alice', 'c1')");
    exec(f, "UPDATE users SET list_version = 1 WHERE handle = 'bob@example.com'");
    exec(f, "INSERT INTO outbox (owner, contact, op, display_name, version) "
            "VALUES ('bob@example.com', 'alice@example.com', 0, 'Bob', 1)");
    f.restart();
    // Sent before this run takes any frame, so the roster finds it applied.
    auto r = roster_of(f, alice);
    REQUIRE(entry(r, bob));
    CHECK(entry(r, bob)->lists == 24);
    CHECK(r.version == 1);
    CHECK(outbox_empties(f));

    // What a crash leaves between Alice's commit and Bob's applying her
    // acknowledgement: the same notice again, which changes nothing.
    f.be.reset();
    exec(f, "INSERT INTO outbox (owner, contact, op, display_name, version) "
            "VALUES ('bob@example.com', 'alice@example.com', 0, 'Bob', 1)");
    f.restart();
    CHECK(roster_of(f, alice) == r);
    CHECK(outbox_empties(f));
}

TEST_CASE("an acknowledgement removes only the notices it covers") {
    users_fixture f;
    exec(f, "INSERT INTO outbox (owner, contact, op, display_name, version) VALUES "
            "('bob@example.com', 'alice@example.com', 1, 'Bob', 5), "
            "('bob@example.com', 'carol@example.com', 0, 'Bob', 3)");
    f.tell(alice, user(bob), frame::ack{4});  // older than Bob's notice to Alice
    f.tell(carol, user(bob), frame::ack{3});
    as<frame::roster>(f.ask(bob, user(bob), frame::roster_get{}));  // behind the acks on Bob's shard
    CHECK(count_rows(f, "SELECT count(*) FROM outbox WHERE contact = 'alice@example.com'") == 1);
    CHECK(count_rows(f, "SELECT count(*) FROM outbox WHERE contact = 'carol@example.com'") == 0);
}

TEST_CASE("a schema version 3 database gets its reverse lists from the forward lists once") {
    users_fixture f;
    change(f, bob, adding(list::forward, alice));
    change(f, carol, adding(list::forward, alice));
    change(f, carol, adding(list::forward, bob));
    change(f, alice, adding(list::allow, carol));
    f.be.reset();
    exec(f, "DROP TABLE reverse_contacts");
    exec(f, "DROP TABLE outbox");
    exec(f, "DROP TABLE contact_views");
    exec(f, "DROP TABLE contact_phones");
    exec(f, "DROP TABLE room_blocks");
    exec(f, "DROP TABLE user_rooms");
    exec(f, "PRAGMA user_version = 3");
    f.restart();
    CHECK(count_rows(f, "PRAGMA user_version") == 7);
    auto r = roster_of(f, alice);
    REQUIRE(r.entries.size() == 2);
    CHECK(r.entries[0].handle == bob);
    CHECK(r.entries[0].lists == 24);  // RL PL
    CHECK(r.entries[0].display_name == "Bob");
    CHECK(r.entries[1].handle == carol);
    CHECK(r.entries[1].lists == 10);  // AL RL
    CHECK(entry(roster_of(f, bob), carol)->lists == 24);

    // Each contact's next notice is newer than the one the upgrade assumed.
    auto& alice_q = f.subscribe(user(alice));
    change(f, carol, removing(list::forward, alice));
    CHECK(next_notice(alice_q, carol).op == frame::change_op::remove);
    CHECK(entry(roster_of(f, alice), carol)->lists == 2);  // AL
}

TEST_CASE("a schema version 4 database gets the phones its contacts show from their rows once") {
    users_fixture f;
    frame::profile_set phones;
    phones.fields = frame::profile_bits::phone_work;
    phones.phones.work = "+1 555 0199";
    as<frame::ack>(f.ask(bob, user(bob), phones));
    as<frame::ack>(f.ask(carol, user(carol), phones));
    change(f, alice, adding(list::forward, bob));
    change(f, alice, adding(list::forward, carol));
    change(f, carol, adding(list::block, alice));
    f.be.reset();
    exec(f, "DROP TABLE contact_phones");
    exec(f, "DROP TABLE room_blocks");
    exec(f, "DROP TABLE user_rooms");
    exec(f, "PRAGMA user_version = 4");
    f.restart();
    CHECK(count_rows(f, "PRAGMA user_version") == 7);
    const auto r = roster_of(f, alice);
    CHECK(entry(r, bob)->phones.work == "+1 555 0199");
    CHECK(entry(r, carol)->phones == frame::phones{});  // Carol blocks Alice
}

// ---------------------------------------------------------------- contacts' presence as they showed it

TEST_CASE("the initial burst shows contacts as their objects showed them, not their rows") {
    users_fixture f;
    change(f, bob, adding(list::forward, alice));
    change(f, bob, adding(list::forward, carol));
    sign_in(f, alice, status::away);
    // Carol's object has applied Bob's notice (and sent him its view, offline)
    // once it answers a request queued behind it.
    roster_of(f, carol);
    // Carol online behind her object's back: Bob's object was never told.
    exec(f, "INSERT INTO presence (handle, endpoint, state, capabilities, capabilities_ex, msn_object) "
            "VALUES ('carol@example.com', 'ep-x', 1, 0, 0, '')");
    const auto burst = sign_in(f, bob);
    REQUIRE(burst.size() == 2);
    const auto& seen = as<frame::presence_update>(burst[0]);
    CHECK(seen.user == alice);
    CHECK(seen.initial);
    CHECK(seen.presence.state == status::away);
}

TEST_CASE("a contact sends a new watcher its presence, which is not shown twice") {
    users_fixture f;
    sign_in(f, alice);
    auto& bob_q = f.subscribe(user(bob));
    const auto replies = f.request(bob, user(bob), adding(list::forward, alice));
    REQUIRE(replies.size() == 2);
    CHECK(as<frame::presence_update>(replies[0]).presence.state == status::online);
    // Alice's object has applied Bob's notice, and sent him her presence,
    // once this reply is out (her shard is first in, first out).
    roster_of(f, alice);
    change(f, carol, adding(list::forward, bob));  // marker
    CHECK(next_notice(bob_q, carol).op == frame::change_op::add);
    CHECK(bob_q.size() == 0);
}

TEST_CASE("a contact whose presence changed before it learned it is watched shows the change") {
    // Alice goes away, or signs out, after Bob's add read her rows and
    // before her object applies his notice: her fan-out did not include him
    // yet, so the view her object sends with the notice is the only way he
    // learns it. The hook puts her change ahead of the notice on her shard.
    const bool signs_out = GENERATE(false, true);
    INFO((signs_out ? "signs out" : "goes away"));
    frame::body change_of_alice = presence(status::away);
    if (signs_out) change_of_alice = frame::bye{error_code::internal, true, {}, "ep-1"};
    embedded::options o;
    auto be = std::make_shared<std::atomic<embedded::backend*>>(nullptr);
    o.after_commit = [be, change_of_alice](std::size_t sends) {
        if (sends == 0) return;
        if (embedded::backend* b = be->exchange(nullptr)) {
            b->send(frame::frame{0, user(alice), alice, change_of_alice}, [](frame::frame) {});
        }
    };
    users_fixture f(o);
    sign_in(f, alice);
    auto& bob_q = f.subscribe(user(bob));
    *be = f.be.get();
    const auto replies = f.request(bob, user(bob), adding(list::forward, alice));
    REQUIRE(replies.size() == 2);
    CHECK(as<frame::presence_update>(replies[0]).presence.state == status::online);
    const auto now = signs_out ? status::offline : status::away;
    CHECK(next_presence(bob_q, alice).state == now);
    // And his next sign-in shows her so.
    const auto burst = sign_in(f, bob);
    if (signs_out) {
        CHECK(burst.size() == 1);
    } else {
        REQUIRE(burst.size() == 2);
        CHECK(as<frame::presence_update>(burst[0]).presence.state == status::away);
    }
}

TEST_CASE("a contact offline when added and when it learns it is watched shows nothing more") {
    users_fixture f;
    auto& bob_q = f.subscribe(user(bob));
    const auto replies = f.request(bob, user(bob), adding(list::forward, alice));
    CHECK(replies.size() == 1);
    roster_of(f, alice);  // her view has gone to Bob by then
    change(f, carol, adding(list::forward, bob));  // marker
    CHECK(next_notice(bob_q, carol).op == frame::change_op::add);
    CHECK(bob_q.size() == 0);
}

TEST_CASE("a notice lost to its receiver's failed commit is sent again after a while") {
    auto now = std::make_shared<std::atomic<std::uint64_t>>(1'000'000'000);
    embedded::options o;
    o.clock = [now] { return now->load(); };
    users_fixture f(o);
    // Alice's commit of Bob's notice fails, and is rolled back.
    exec(f, "CREATE TRIGGER refuse BEFORE INSERT ON reverse_contacts BEGIN SELECT RAISE(ABORT, 'disk full'); END");
    change(f, bob, adding(list::forward, alice));
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (f.be->stats().storage_errors == 0) {
        REQUIRE(std::chrono::steady_clock::now() < deadline);
        std::this_thread::sleep_for(1ms);
    }
    exec(f, "DROP TRIGGER refuse");
    CHECK(entry(roster_of(f, alice), bob) == nullptr);
    CHECK(count_rows(f, "SELECT count(*) FROM outbox") == 1);

    // Not yet: Bob's object waits a minute for the acknowledgement.
    *now += 59'000;
    roster_of(f, bob);
    CHECK(entry(roster_of(f, alice), bob) == nullptr);
    // Then sends the notice again: the frame that wakes Bob's shard finds
    // the deadline passed, and his reply leaves after the notice.
    *now += 1'001;
    roster_of(f, bob);
    const auto r = roster_of(f, alice);
    REQUIRE(entry(r, bob));
    CHECK(entry(r, bob)->lists == 24);
    CHECK(outbox_empties(f));
}
