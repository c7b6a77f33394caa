// Kernel counters of AF_PACKET sockets (what libpcap's pcap_stats reads on
// Linux), for the capture service: cap keeps its pcap handle private, so the
// socket is found by descriptor. Reading PACKET_STATISTICS resets the kernel's
// counters: the JS side accumulates the deltas.
#include <node_api.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/if_packet.h>

#ifndef SO_DOMAIN
#define SO_DOMAIN 39
#endif

static napi_value throw_errno(napi_env env, const char* what, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, NULL, msg);
  return NULL;
}

// isPacketSocket(fd) -> boolean
static napi_value IsPacketSocket(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok) {
    napi_throw_type_error(env, NULL, "isPacketSocket(fd): fd must be an integer");
    return NULL;
  }
  int domain = 0;
  socklen_t len = sizeof domain;
  napi_value out;
  bool yes = getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 && domain == AF_PACKET;
  napi_get_boolean(env, yes, &out);
  return out;
}

// readStats(fd) -> { packets, drops } since the previous read (the kernel resets them)
static napi_value ReadStats(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok) {
    napi_throw_type_error(env, NULL, "readStats(fd): fd must be an integer");
    return NULL;
  }
  // tpacket_stats_v3 is a superset of tpacket_stats; the kernel fills what the socket's version has.
  struct tpacket_stats_v3 st;
  memset(&st, 0, sizeof st);
  socklen_t len = sizeof st;
  if (getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) != 0) return throw_errno(env, "getsockopt(PACKET_STATISTICS)", errno);
  napi_value obj, packets, drops;
  napi_create_object(env, &obj);
  napi_create_double(env, (double)st.tp_packets, &packets);
  napi_create_double(env, (double)st.tp_drops, &drops);
  napi_set_named_property(env, obj, "packets", packets);
  napi_set_named_property(env, obj, "drops", drops);
  return obj;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "isPacketSocket", NAPI_AUTO_LENGTH, IsPacketSocket, NULL, &fn);
  napi_set_named_property(env, exports, "isPacketSocket", fn);
  napi_create_function(env, "readStats", NAPI_AUTO_LENGTH, ReadStats, NULL, &fn);
  napi_set_named_property(env, exports, "readStats", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
