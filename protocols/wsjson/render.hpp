// Frames as JSON values of the WebSocket protocol, and the few JSON values
// clients send that map onto frame types (status, format). One table per
// mapping, so README.md and the code cannot drift apart silently: the
// tests check each table against the spec's examples.
#pragma once

#include "protocols/frame/frame.hpp"
#include "protocols/frame/mapping.hpp"

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace switchyard::wsjson {

// Status names, both ways: frame::status_table (protocols/frame/mapping.hpp).
std::string_view status_name(frame::status s);
// A status a client may set: every name but "offline".
std::optional<frame::status> settable_status(std::string_view name);

// {"font","bold","italic","underline","strikethrough","color":"#rrggbb","right_to_left"}.
boost::json::object format_json(const frame::text_format& f);
bool format_is_plain(const frame::text_format& f);
// nullopt with `why` set when a field has the wrong type or value.
std::optional<frame::text_format> parse_format(const boost::json::value& v, std::string& why);

// "w" + 16 hex digits of the sender's handle + "/" + the client's id. Rooms
// compare message ids per sender, so the prefix is not what keeps senders
// apart; it marks the id as a client's (client_id_of) and stays as it is,
// since stored ids and retries in flight through other gateways use it.
std::string client_message_id(std::string_view handle, std::string_view client_id);
// The client's id back out of a message_id made by client_message_id for
// `handle`; empty for any other message_id (MSNP's, generated ones).
std::string_view client_id_of(std::string_view handle, std::string_view message_id);
// The prefix of message ids made for requests without a client id.
std::string generated_message_prefix(std::string_view handle);

// {"user","status","display_name","personal_message","current_media"}.
boost::json::object presence_json(std::string_view user, const frame::presence_info& p);
// Lists as names: ["forward","allow",…].
boost::json::array lists_json(std::uint32_t bits);
boost::json::object contact_json(const frame::roster_entry& e);
boost::json::object group_json(const frame::group& g);

// A short readable notice for content another protocol sent that this one
// cannot show (MSNP P2P data, winks, file transfer invitations).
std::string opaque_notice(std::string_view content_type);

}  // namespace switchyard::wsjson
