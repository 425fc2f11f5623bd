// Gatehouse mesh isolation: a tc classifier on the mesh WireGuard interface's ingress that drops,
// in the kernel, every packet whose source and destination belong to different organizations.
//
// Built by the package's own build (Plugins/BPFObjectPlugin, the Swift toolchain's clang with
// -target bpf) and loaded by `gatehouse agent run` with tc; the agent keeps gh_orgs current.
//
// gh_orgs maps mesh prefixes (longest match) to organization ids. Id 0 marks prefixes whose
// traffic the packet filter judges alone (people's devices, a gateway's routes). A packet passes
// only if it is IPv6, both addresses are in the map, and the ids are equal or one of them is 0.
// Everything else is dropped: the mesh carries IPv6 between known prefixes and nothing else.
//
// gh_stats counts verdicts, per CPU (no cache line bounces between cores on the hot path):
// 0 passed, 1 dropped across organizations, 2 dropped for an unknown address, 3 dropped as not
// IPv6 (or truncated).
//
// No kernel headers are needed: the few definitions used are spelled out below.

typedef unsigned int u32;
typedef unsigned long long u64;
typedef unsigned char u8;

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int(*name)[val]
#define __type(name, val) typeof(val) *name

#define BPF_MAP_TYPE_PERCPU_ARRAY 6
#define BPF_MAP_TYPE_LPM_TRIE 11
#define BPF_F_NO_PREALLOC 1
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define ETH_P_IPV6_BE 0xDD86 /* htons(0x86DD) on a little-endian machine */

// The start of the kernel's struct __sk_buff (UAPI, stable), up to data_end (offset 80).
struct __sk_buff {
    u32 len, pkt_type, mark, queue_mapping, protocol, vlan_present, vlan_tci, vlan_proto, priority;
    u32 ingress_ifindex, ifindex, tc_index, cb[5], hash, tc_classid, data, data_end;
};

struct lpm_key {
    u32 prefixlen;
    u8 addr[16];
};

struct {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);
    __type(key, struct lpm_key);
    __type(value, u32);
    __uint(max_entries, 65536);
    __uint(map_flags, BPF_F_NO_PREALLOC);
} gh_orgs SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __type(key, u32);
    __type(value, u64);
    __uint(max_entries, 4);
} gh_stats SEC(".maps");

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_skb_load_bytes)(const void *skb, u32 offset, void *to, u32 len) = (void *)26;

static inline __attribute__((always_inline)) int verdict(u32 reason, int action) {
    u64 *counter = bpf_map_lookup_elem(&gh_stats, &reason);
    if (counter)
        *counter += 1;
    return action;
}

SEC("tc")
int gh_mesh_isolation(struct __sk_buff *skb) {
    // A WireGuard interface carries bare IP packets: the IPv6 header starts at offset 0, with the
    // source address at 8 and the destination at 24.
    if (skb->protocol != ETH_P_IPV6_BE)
        return verdict(3, TC_ACT_SHOT);
    struct lpm_key source = {128, {0}};
    struct lpm_key destination = {128, {0}};
    // Read the addresses straight from the packet when its first 40 bytes are in the linear
    // part (the usual case: plain loads, no helper call), else through the helper.
    const u8 *data = (const u8 *)(unsigned long)skb->data;
    const u8 *end = (const u8 *)(unsigned long)skb->data_end;
    if (data + 40 <= end) {
        __builtin_memcpy(source.addr, data + 8, 16);
        __builtin_memcpy(destination.addr, data + 24, 16);
    } else if (bpf_skb_load_bytes(skb, 8, source.addr, 16) < 0 || bpf_skb_load_bytes(skb, 24, destination.addr, 16) < 0) {
        return verdict(3, TC_ACT_SHOT);
    }
    u32 *from = bpf_map_lookup_elem(&gh_orgs, &source);
    u32 *to = bpf_map_lookup_elem(&gh_orgs, &destination);
    if (!from || !to)
        return verdict(2, TC_ACT_SHOT);
    if (*from != 0 && *to != 0 && *from != *to)
        return verdict(1, TC_ACT_SHOT);
    return verdict(0, TC_ACT_OK);
}

char _license[] SEC("license") = "GPL";
