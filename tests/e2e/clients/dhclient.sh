#!/bin/sh
# dhclient hook for the agent tests (the stock dhclient-script would rewrite
# the host's /etc/resolv.conf): applies the lease inside the namespace and,
# when LEASE_OUT names a file, writes what the server sent there.
report() {
  [ -n "${LEASE_OUT:-}" ] || return 0
  cat > "$LEASE_OUT.tmp" && mv "$LEASE_OUT.tmp" "$LEASE_OUT"
}
case "$reason" in
  BOUND|RENEW|REBIND|REBOOT)
    [ -n "$new_interface_mtu" ] && ip link set dev "$interface" mtu "$new_interface_mtu"
    ip addr replace "$new_ip_address/$new_subnet_mask" dev "$interface"
    for r in $new_routers; do ip route replace default via "$r" dev "$interface"; break; done
    report <<EOT
event=$reason
ip=$new_ip_address
mask=$new_subnet_mask
router=$new_routers
dns=$new_domain_name_servers
domain=$new_domain_name
hostname=$new_host_name
mtu=$new_interface_mtu
lease=$new_dhcp_lease_time
serverid=$new_dhcp_server_identifier
classless=$new_rfc3442_classless_static_routes
EOT
    ;;
esac
exit 0
