// How MSNP and the WebSocket JSON protocol meet in frames: one table per
// mapping, used by both codecs and printed in README.md ("Mapping between
// MSN Messenger and WebSocket clients"); a unit test compares the two, so
// the code and the documentation cannot drift apart.
#pragma once

#include "protocols/frame/frame.hpp"

#include <string_view>

namespace switchyard::frame {

// Presence states: the frame value, MSNP's code (msnp-reference §4.2) and
// the WebSocket status name. Offline is only ever received.
struct status_row {
    status state;
    std::string_view msnp;
    std::string_view wsjson;
};
inline constexpr status_row status_table[] = {
    {status::online, "NLN", "online"},
    {status::busy, "BSY", "busy"},
    {status::idle, "IDL", "idle"},
    {status::be_right_back, "BRB", "be_right_back"},
    {status::away, "AWY", "away"},
    {status::on_the_phone, "PHN", "on_the_phone"},
    {status::out_to_lunch, "LUN", "out_to_lunch"},
    {status::invisible, "HDN", "invisible"},
    {status::offline, "FLN", "offline"},
};

// What each side sends for one kind of content, and the frame between them.
struct content_row {
    std::string_view what;
    std::string_view frame;
    std::string_view msnp;
    std::string_view wsjson;
};
inline constexpr content_row content_table[] = {
    {"text", "room_message", "SB `MSG` text/plain, acknowledged with `ACK` once durable",
     "`send` → reply `{seq}` once durable; event `message`"},
    {"formatting", "room_message.format", "`X-MMS-IM-Format` FN, EF (B I U S), CO (BGR hex), RL",
     "`format` {font, bold, italic, underline, strikethrough, color `#rrggbb`, right_to_left}"},
    {"typing", "room_typing", "text/x-msmsgscontrol `TypingUser`", "`typing` {room, active}"},
    {"nudge", "room_nudge", "text/x-msnmsgr-datacast `ID: 1` (MSNP9+)", "`nudge` {room}"},
    {"presence", "presence_set / presence_update", "`CHG` / `NLN` `ILN` `FLN` (table above)", "`presence` {status}"},
    {"personal message", "profile_set / presence_update", "`UUX` / `UBX` `<PSM>` (MSNP11+)",
     "`profile` {personal_message}; `presence` event"},
    {"display name", "profile_set / presence_update", "`REA` (MSNP2-9), `PRP MFN` (MSNP10+); `NLN` name",
     "`profile` {display_name}; `presence` event"},
    {"invitation", "room_invite", "SB `CAL` / NS `RNG`", "`chat_open`, `invite` / event `invite`"},
    {"MSNP-only content", "room_opaque", "P2P data, winks, file transfer invitations, custom emoticons",
     "event `notice` with a short readable text (never the bytes)"},
};

// The row for `s`; every status has one.
constexpr const status_row& status_row_of(status s) {
    for (const auto& row : status_table) {
        if (row.state == s) return row;
    }
    return status_table[std::size(status_table) - 1];
}

}  // namespace switchyard::frame
