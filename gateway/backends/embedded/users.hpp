// Reads of user rows shared by user and room objects. Only the user's own
// object writes them. An object should read only its own rows too (design
// section 2): the reverse list and the contacts' presence are the user's
// own (reverse_contacts, contact_views); what still reads another user's
// rows through these (a contact's presence, privacy and phones when it is
// added and in the roster, a room's checks of an invitee and of blocks) is
// to move to frames between the objects.
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

std::optional<user_row> read_user(database& db, std::string_view handle);
bool user_exists(database& db, std::string_view handle);

// The FL/AL/BL bits `owner` has set for `contact` (0 when none).
std::uint32_t stored_lists(database& db, std::string_view owner, std::string_view contact);

// The users whose block list holds `contact` (the contacts_by_contact index).
std::vector<std::string> blockers_of(database& db, std::string_view contact);

// Whether `u`'s privacy lets `watcher` see it and reach it: not on u's BL,
// and on u's AL or u's default is allow.
bool allows(database& db, const user_row& u, std::string_view watcher);

// Higher is more available: an online endpoint wins over an away one, any
// state over offline. The user object ranks its endpoints in memory with the
// same order, so what it sends watchers matches effective_presence.
int availability(frame::status s);

// The user's presence as its most available endpoint shows it, with the
// profile's name and personal message; state offline without endpoints,
// invisible when every endpoint is.
frame::presence_info effective_presence(database& db, const user_row& u);

// What `watcher` sees of `u`: its presence if watcher has u on its FL, u
// allows watcher and u is not invisible; otherwise u offline (with name).
frame::presence_info presence_seen_by(database& db, const user_row& u, const frame::presence_info& effective,
                                      std::string_view watcher);

bool is_online(frame::status s);

// The reverse-list notice `owner`'s object sends `contact`'s object when
// `contact` joins (add) or leaves (remove) the owner's forward list: the
// owner's own statement, at the owner's list version `version`, which orders
// its notices to each contact (gateway/backends/README.md, "Reverse-list
// exchange").
frame::frame reverse_notice(std::string_view owner, std::string_view contact, frame::change_op op,
                            std::string display_name, std::uint64_t version);

// The notices in every user's outbox: sent, and not acknowledged by the
// contact's object. The backend sends them again when it starts.
std::vector<frame::frame> unacknowledged_notices(database& db);

}  // namespace switchyard::gateway::embedded
