// Switchboard MSG payloads (msnp-reference §4.6) and the room frames they
// stand for: chat text, typing, nudges, and everything else relayed as
// opaque bytes between MSNP endpoints.
#pragma once

#include "protocols/frame/frame.hpp"

#include <string>
#include <string_view>

namespace switchyard::msnp {

inline constexpr std::string_view p2p_content_type = "application/x-msnmsgrp2p";

// What a client's MSG payload becomes:
//   text/plain (charset UTF-8, ISO-8859-1 or none) -> room_message{text, format}
//   text/x-msmsgscontrol                            -> room_typing
//   text/x-msnmsgr-datacast with body "ID: 1"        -> room_nudge
//   anything else, and text/plain in another charset or in chunks
//                                                   -> room_opaque{msnp, lowercased media type, exact bytes}
// Only the translated fields are set (no message_id, no ack_requested).
frame::body read_payload(std::string_view payload);

// X-MMS-IM-Format's value ⇄ text_format. Reading is lenient (unknown or
// malformed fields are left at their defaults); writing uses the official
// clients' order FN, EF, CO, CS, PF{, RL}.
frame::text_format read_format(std::string_view value);
std::string write_format(const frame::text_format& f);

// Payloads relayed to MSNP clients, in the form official clients send.
// The X-MMS-IM-Format header is left out when the format is all defaults
// (nothing to say; clients then use their own font, as for Escargot's
// messages from non-MSNP senders).
std::string text_payload(const frame::room_message& m);
std::string typing_payload(std::string_view user);
std::string nudge_payload();

}  // namespace switchyard::msnp
