// An XDP parser with a TCP-options loop: Ethernet, one optional VLAN tag,
// IPv4 (with options) or IPv6, TCP, then up to 10 options (MSS, window
// scale, SACK-permitted, timestamps) counted into a map. The kernel's
// verifier walks every path through the options loop and gives up after 1M
// instructions; Ember's joins paths at the loop head and proves it (issue
// 4, "beyond the kernel"). tcp_options_unchecked forgets one bounds check
// and must be rejected.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

struct tcp_stats {
  __u64 packets;
  __u64 tcp;
  __u64 mss_sum;
  __u64 wscale;
  __u64 sack_ok;
  __u64 timestamps;
  __u64 options;
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct tcp_stats);
} stats SEC(".maps");

#define MAX_OPTIONS 10

static __always_inline int parse(struct xdp_md *ctx, int check_length) {
  void *data = (void *)(long)ctx->data;
  void *end = (void *)(long)ctx->data_end;
  __u32 zero = 0;
  struct tcp_stats *st = bpf_map_lookup_elem(&stats, &zero);
  if (!st) return XDP_ABORTED;
  st->packets++;

  struct ethhdr *eth = data;
  if ((void *)(eth + 1) > end) return XDP_DROP;
  __u16 proto = eth->h_proto;
  void *l3 = eth + 1;
  if (proto == bpf_htons(ETH_P_8021Q)) {
    if (l3 + 4 > end) return XDP_DROP;
    proto = *(__u16 *)(l3 + 2);
    l3 += 4;
  }

  struct tcphdr *tcp;
  if (proto == bpf_htons(ETH_P_IP)) {
    struct iphdr *ip = l3;
    if ((void *)(ip + 1) > end) return XDP_DROP;
    if (ip->protocol != IPPROTO_TCP) return XDP_PASS;
    __u32 ihl = ip->ihl * 4;
    if (ihl < sizeof(*ip)) return XDP_DROP;
    tcp = l3 + ihl;
  } else if (proto == bpf_htons(ETH_P_IPV6)) {
    struct ipv6hdr *ip6 = l3;
    if ((void *)(ip6 + 1) > end) return XDP_DROP;
    if (ip6->nexthdr != IPPROTO_TCP) return XDP_PASS;
    tcp = (void *)(ip6 + 1);
  } else {
    return XDP_PASS;
  }
  if ((void *)(tcp + 1) > end) return XDP_DROP;
  st->tcp++;

  __u32 doff = tcp->doff * 4;
  if (doff < sizeof(*tcp)) return XDP_DROP;
  __u8 *opt = (__u8 *)(tcp + 1);
  __u8 *opt_end = (__u8 *)tcp + doff;
  for (int i = 0; i < MAX_OPTIONS; i++) {
    if ((void *)(opt + 1) > end || opt >= opt_end) break;
    __u8 kind = opt[0];
    if (kind == 0) break;  // end of the option list
    if (kind == 1) {       // no-op padding
      opt++;
      continue;
    }
    if (check_length && (void *)(opt + 2) > end) break;
    __u8 len = opt[1];
    if (len < 2) return XDP_DROP;
    st->options++;
    if (kind == 2 && len == 4) {
      if ((void *)(opt + 4) > end) break;
      st->mss_sum += (opt[2] << 8) | opt[3];
    } else if (kind == 3 && len == 3) {
      st->wscale++;
    } else if (kind == 4 && len == 2) {
      st->sack_ok++;
    } else if (kind == 8 && len == 10) {
      st->timestamps++;
    }
    opt += len;
  }
  return XDP_PASS;
}

SEC("xdp")
int tcp_options(struct xdp_md *ctx) { return parse(ctx, 1); }

SEC("xdp")
int tcp_options_unchecked(struct xdp_md *ctx) { return parse(ctx, 0); }

char LICENSE[] SEC("license") = "GPL";
