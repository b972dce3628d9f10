// The sd_bus_message under an sdbus-c++ 1.x Message, for what sdbus-c++
// does not expose (the sender's credentials as the bus reports them, the
// ALLOW_INTERACTIVE_AUTHORIZATION header flag). sdbus::Message keeps its
// pointer protected; a pointer to that member, named through a derived
// class, reads it without any cast. Users link libsystemd.
#pragma once

#include <sdbus-c++/sdbus-c++.h>
#include <systemd/sd-bus.h>

namespace tierswap::dbus {

struct RawMessage : sdbus::Message {
  static sd_bus_message* of(const sdbus::Message& m) {
    constexpr auto member = &RawMessage::msg_;
    return static_cast<sd_bus_message*>(m.*member);
  }
};

}  // namespace tierswap::dbus
