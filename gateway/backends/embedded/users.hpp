// A user's own row and the list bits and helpers user and room objects
// share. Only the user's own object reads or writes its rows: what another
// object needs of a user (whether it exists, what it shows a contact, its
// privacy towards an inviter, its block list) it asks the user's object
// for, with frames through the router (gateway/backends/README.md,
// "Requests between objects"), since the two may live on different
// backends.
#pragma once

#include "gateway/backends/embedded/sqlite.hpp"

#include "protocols/frame/frame.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace switchyard::gateway::embedded {

inline constexpr std::uint32_t bit(frame::list l) { return 1u << static_cast<unsigned>(l); }
inline constexpr std::uint32_t forward_bit = bit(frame::list::forward);
inline constexpr std::uint32_t allow_bit = bit(frame::list::allow);
inline constexpr std::uint32_t block_bit = bit(frame::list::block);
inline constexpr std::uint32_t reverse_bit = bit(frame::list::reverse);
inline constexpr std::uint32_t pending_bit = bit(frame::list::pending);

struct user_row {
    std::string handle;
    std::string display_name;
    std::string personal_message;
    std::string current_media;
    frame::phones phones;
    bool mobile_device = false;
    frame::privacy_default privacy = frame::privacy_default::allow;
    bool privacy_set = false;
    frame::add_prompt prompt = frame::add_prompt::prompt;
    bool prompt_set = false;
    std::uint64_t list_version = 0;
};

// The user's own row, as its object loads it.
std::optional<user_row> read_user(database& db, std::string_view handle);
// Whether a users row exists for `handle`: for operator commands, which
// work on the file itself.
bool user_exists(database& db, std::string_view handle);

// Higher is more available: an online endpoint wins over an away one, any
// state over offline. The user object ranks its endpoints in memory with the
// same order.
int availability(frame::status s);

bool is_online(frame::status s);

// The reverse-list notice `owner`'s object sends `contact`'s object when
// `contact` joins (add) or leaves (remove) the owner's forward list: the
// owner's own statement, at the owner's list version `version`, which orders
// its notices to each contact (gateway/backends/README.md, "Reverse-list
// exchange").
frame::frame reverse_notice(std::string_view owner, std::string_view contact, frame::change_op op,
                            std::string display_name, std::uint64_t version);

// What the removed account `owner` tells `contact`'s object: that it is
// gone (account_delete from another object; gateway/backends/README.md,
// "Accounts").
frame::frame departure_notice(std::string_view owner, std::string_view contact);

// The notices in every user's outbox, and removed accounts' departures:
// sent, and not acknowledged by the contact's object. The backend sends
// them again when it starts.
std::vector<frame::frame> unacknowledged_notices(database& db);

}  // namespace switchyard::gateway::embedded
