#!/usr/bin/env bash
# Certificates, keys and kubeconfigs of the local cluster (sourced by up.sh). The PKI is kept across
# bring-ups while it is complete and valid for another day (saves seconds); otherwise it is made anew.
# Kubeconfigs are always rewritten.

# make_cert <name> <subject> [<subjectAltName>]: a key and a certificate signed by the cluster CA.
make_cert() {
  local name=$1 subject=$2 san=${3:-}
  local ext="$ZS_PKI/$name.ext"
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    if [[ -n $san ]]; then
      echo "extendedKeyUsage=serverAuth,clientAuth"
      echo "subjectAltName=$san"
    else
      echo "extendedKeyUsage=clientAuth"
    fi
  } >"$ext"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$ZS_PKI/$name.key" \
    -subj "$subject" -out "$ZS_PKI/$name.csr" 2>/dev/null
  openssl x509 -req -in "$ZS_PKI/$name.csr" -CA "$ZS_PKI/ca.crt" -CAkey "$ZS_PKI/ca.key" -CAcreateserial \
    -days 365 -sha256 -extfile "$ext" -out "$ZS_PKI/$name.crt" 2>/dev/null
  rm -f "$ZS_PKI/$name.csr" "$ext"
}

# make_kubeconfig <file> <cert name> <server>: a kubeconfig authenticating with a client certificate.
make_kubeconfig() {
  local file=$1 name=$2 server=$3
  cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: zeroscale
  cluster:
    server: $server
    certificate-authority-data: $(base64 -w0 <"$ZS_PKI/ca.crt")
users:
- name: $name
  user:
    client-certificate-data: $(base64 -w0 <"$ZS_PKI/$name.crt")
    client-key-data: $(base64 -w0 <"$ZS_PKI/$name.key")
contexts:
- name: zeroscale
  context: {cluster: zeroscale, user: $name, namespace: default}
current-context: zeroscale
EOF
  chmod 600 "$file"
}

pki_valid() {
  local f
  for f in ca apiserver admin controller-manager scheduler node kubelet; do
    [[ -s $ZS_PKI/$f.crt && -s $ZS_PKI/$f.key ]] || return 1
  done
  [[ -s $ZS_PKI/sa.key && -s $ZS_PKI/sa.pub && $(cat "$ZS_PKI/.sans" 2>/dev/null) == "$(pki_sans)" ]] || return 1
  openssl x509 -checkend 86400 -noout -in "$ZS_PKI/apiserver.crt" >/dev/null 2>&1
}

# The API server is reached at the bridge address (host and pods alike), on loopback, and by the usual
# in-cluster names; the first service IP is in the SANs too, as on a real cluster.
pki_sans() {
  local first_service_ip="${ZS_SERVICE_CIDR%.*/*}.1"
  echo "IP:$ZS_BRIDGE_IP,IP:127.0.0.1,IP:$first_service_ip,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
}

# kube-proxy's identity: the default ClusterRoleBinding system:node-proxier lets user system:kube-proxy
# list and watch Services, EndpointSlices and Nodes. Made on its own when missing (a PKI from before
# kube-proxy ran here lacks it and is otherwise still valid).
make_proxy_kubeconfig() {
  [[ -s $ZS_PKI/proxy.crt && -s $ZS_PKI/proxy.key ]] || { make_cert proxy "/CN=system:kube-proxy" && chmod 600 "$ZS_PKI/proxy.key"; }
  make_kubeconfig "$ZS_RUN/proxy.kubeconfig" proxy "https://$ZS_BRIDGE_IP:$ZS_API_PORT"
}

make_pki() {
  pki_valid || make_certs
  make_proxy_kubeconfig
  local server="https://$ZS_BRIDGE_IP:$ZS_API_PORT"
  make_kubeconfig "$ZS_KUBECONFIG" admin "$server"
  make_kubeconfig "$ZS_RUN/controller-manager.kubeconfig" controller-manager "$server"
  make_kubeconfig "$ZS_RUN/scheduler.kubeconfig" scheduler "$server"
  make_kubeconfig "$ZS_RUN/node.kubeconfig" node "$server"
}

make_certs() {
  rm -rf "$ZS_PKI" && mkdir -p "$ZS_PKI" && chmod 700 "$ZS_PKI"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 -sha256 \
    -keyout "$ZS_PKI/ca.key" -out "$ZS_PKI/ca.crt" -subj "/CN=zeroscale-local-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  make_cert apiserver "/CN=kube-apiserver" "$(pki_sans)"
  make_cert admin "/O=system:masters/CN=zeroscale-admin"
  make_cert controller-manager "/CN=system:kube-controller-manager"
  make_cert scheduler "/CN=system:kube-scheduler"
  # The kubelet's client identity: the Node authorizer and NodeRestriction apply to it.
  make_cert node "/O=system:nodes/CN=system:node:$ZS_NODE_NAME"
  # The kubelet's serving certificate (logs, exec, port-forward), which the API server reaches at the
  # node address and checks against the cluster CA.
  make_cert kubelet "/O=system:nodes/CN=system:node:$ZS_NODE_NAME" "IP:$ZS_BRIDGE_IP,DNS:$ZS_NODE_NAME"
  # Service-account tokens: RSA, the key type every client library accepts.
  openssl genrsa -out "$ZS_PKI/sa.key" 2048 2>/dev/null
  openssl rsa -in "$ZS_PKI/sa.key" -pubout -out "$ZS_PKI/sa.pub" 2>/dev/null
  chmod 600 "$ZS_PKI"/*.key
  pki_sans >"$ZS_PKI/.sans"
}
