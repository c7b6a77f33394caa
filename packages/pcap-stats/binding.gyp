{
  "targets": [
    {
      "target_name": "pcap_stats",
      "sources": ["src/pcap_stats.c"],
      "cflags": ["-O2", "-Wall"]
    }
  ]
}
