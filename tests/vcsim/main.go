// Command vcsim serves govmomi's vCenter simulator (the simulator.VPX model) for vmig's tests.
//
// Debian ships govmomi only as a Go library, so the tests build this small main from it
// (tests/vcsim/build.sh). On top of the stock inventory it injects what ESXi hosts with
// NVIDIA vGPU report (gpu.go), because vcsim 0.24 has no GPU model at all, and it can pre-set
// custom attribute values on hosts so benchmarks need no running agents. HasPrivilegeOnEntities
// answers from the roles and permissions set (authorization.go): the harness's login user is
// an administrator, every other user holds what a test grants it. RebootHost_Task, which vcsim
// lacks, takes a host in maintenance mode through a reboot (reboot.go).
//
// Contract with the Rust harness (tests/testkit): the only line written to stdout is the SDK
// URL, once the server accepts connections; logs go to stderr. SIGTERM, SIGINT and (with
// -exit-on-stdin-eof) the end of stdin shut it down and remove the VM files it wrote.
package main

import (
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/types"

	// Registers the /rest endpoints (tagging) that vcsim offers next to /sdk.
	_ "github.com/vmware/govmomi/vapi/simulator"
)

type options struct {
	datacenters, clusters, hostsPerCluster, standaloneHosts, vms int

	listen, certFile, keyFile, username, password, apiVersion string
	gpuConfig, customValues, methodDelay, stockTLS            string
	rebootDir                                                 string
	rebootDowntime                                            time.Duration
	exitOnStdinEOF                                            bool
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("vcsim: ")

	var o options
	flag.IntVar(&o.datacenters, "dc", 1, "datacenters")
	flag.IntVar(&o.clusters, "cluster", 1, "clusters per datacenter")
	flag.IntVar(&o.hostsPerCluster, "host", 3, "hosts per cluster")
	flag.IntVar(&o.standaloneHosts, "standalone-host", 1, "standalone hosts per datacenter")
	flag.IntVar(&o.vms, "vm", 2, "VMs per resource pool (each cluster's root pool and each standalone host)")
	flag.StringVar(&o.listen, "listen", "127.0.0.1:0", "loopback address:port to listen on (port 0 picks a free one)")
	flag.StringVar(&o.certFile, "tlscert", "", "PEM server certificate (chain); with -tlskey serves https")
	flag.StringVar(&o.keyFile, "tlskey", "", "PEM private key of -tlscert")
	flag.StringVar(&o.stockTLS, "stock-tls", "", "FILE: serve https with govmomi's own built-in test certificate (1024-bit RSA, self-signed) and write it, PEM, to FILE")
	flag.StringVar(&o.username, "username", "", "accept only this user (default: any non-empty user and password)")
	flag.StringVar(&o.password, "password", "", "password for -username")
	flag.StringVar(&o.apiVersion, "api-version", "", "API version to advertise (default: the model's 6.5)")
	flag.StringVar(&o.gpuConfig, "gpu-config", "", "JSON file: GPU models and which hosts carry them (docs/testing.md)")
	flag.StringVar(&o.customValues, "custom-values", "", `JSON file {"HOST": {"FIELD": "VALUE"}}: custom attribute values to pre-set on hosts`)
	flag.StringVar(&o.methodDelay, "method-delay", "", "METHOD=MS[,METHOD=MS...]: delay these vim25 methods (e.g. RelocateVM_Task=2000) before they run, to test clients interrupted mid-call")
	flag.StringVar(&o.rebootDir, "reboot-dir", "", "DIR: on each RebootHost_Task write DIR/<host name>: \"N down\", then \"N up BOOTTIME\" once the host is back (reboot.go)")
	flag.DurationVar(&o.rebootDowntime, "reboot-downtime", time.Second, "how long a rebooting host stays notResponding")
	flag.BoolVar(&o.exitOnStdinEOF, "exit-on-stdin-eof", false, "shut down when stdin closes (the harness dies with it)")
	flag.Parse()
	if flag.NArg() > 0 {
		log.Fatalf("unexpected arguments %q; see -help", flag.Args())
	}

	if err := run(o); err != nil {
		log.Fatal(err)
	}
}

func run(o options) error {
	// Trap signals first: a SIGTERM that arrives before Notify kills the process on the spot,
	// leaking the VM files, and a harness may well stop us right after reading the URL.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)

	// vcsim advertises the first non-loopback interface when listening on a wildcard address,
	// and tests must never expose a vCenter with any-password logins on the network.
	host, _, err := net.SplitHostPort(o.listen)
	if err != nil {
		return fmt.Errorf("-listen %q: %v", o.listen, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-listen %q: only loopback IP addresses (127.0.0.1, ::1) are allowed", o.listen)
	}
	if (o.certFile == "") != (o.keyFile == "") {
		return fmt.Errorf("-tlscert and -tlskey go together")
	}
	if o.stockTLS != "" && o.certFile != "" {
		return fmt.Errorf("-stock-tls and -tlscert are alternatives")
	}

	// Read every input before the model is built: a typo should fail in milliseconds,
	// not after a 45-second inventory build.
	gpus, err := loadGPUConfig(o.gpuConfig)
	if err != nil {
		return err
	}
	values := map[string]map[string]string{}
	if o.customValues != "" {
		if err := readJSON(o.customValues, &values); err != nil {
			return err
		}
	}
	var tlsConfig *tls.Config
	if o.certFile != "" {
		cert, err := tls.LoadX509KeyPair(o.certFile, o.keyFile)
		if err != nil {
			return fmt.Errorf("TLS certificate %s / key %s: %v", o.certFile, o.keyFile, err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	if o.stockTLS != "" {
		// A config without certificates: the simulator's server then serves its built-in
		// one (simulator/internal/testcert.go), as a stock `vcsim` does.
		tlsConfig = &tls.Config{}
	}

	delays, err := parseMethodDelay(o.methodDelay)
	if err != nil {
		return err
	}
	if o.rebootDowntime < 0 {
		return fmt.Errorf("-reboot-downtime %v: must not be negative", o.rebootDowntime)
	}
	if o.rebootDir != "" {
		if st, err := os.Stat(o.rebootDir); err != nil || !st.IsDir() {
			return fmt.Errorf("-reboot-dir %q: not a directory", o.rebootDir)
		}
	}

	m := simulator.VPX()
	// govmomi's own per-method delay: the call sleeps before it runs (a task method thus
	// answers, and its task starts, only after the delay).
	m.DelayConfig.MethodDelay = delays
	m.Datacenter, m.Cluster, m.ClusterHost = o.datacenters, o.clusters, o.hostsPerCluster
	m.Host, m.Machine = o.standaloneHosts, o.vms
	if o.apiVersion != "" {
		m.ServiceContent.About.ApiVersion = o.apiVersion
	}
	start := time.Now()
	// Remove deletes the datastore directories (the VM files) that Create writes under $TMPDIR.
	defer m.Remove()
	if err := m.Create(); err != nil {
		return fmt.Errorf("building the inventory: %v", err)
	}
	gpuHosts, err := injectGPUs(gpus)
	if err != nil {
		return err
	}
	if err := setCustomValues(values); err != nil {
		return err
	}
	reportCustomFieldChanges()
	// vcsim's own default login (govc's examples use user/pass) when -username is not set.
	admin := o.username
	if admin == "" {
		admin = "user"
	}
	enforceRoles(admin)
	installReboot(m.Service, host, o.rebootDowntime, o.rebootDir)
	count := m.Count()
	log.Printf("inventory built in %.1fs: %d hosts (%d with GPUs), %d VMs",
		time.Since(start).Seconds(), count.Host, gpuHosts, count.Machine)

	m.Service.RegisterEndpoints = true
	m.Service.Listen = &url.URL{Host: o.listen}
	if o.username != "" {
		m.Service.Listen.User = url.UserPassword(o.username, o.password)
	}
	m.Service.TLS = tlsConfig
	// No s.Close() on the way out: it waits for in-flight requests, and a client's
	// WaitForUpdatesEx long poll would hold up the shutdown (and the file removal) for minutes.
	// Exiting closes the sockets anyway.
	s := m.Service.NewServer()
	if o.stockTLS != "" {
		der := s.Certificate().Raw
		if err := os.WriteFile(o.stockTLS, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
			return fmt.Errorf("-stock-tls %s: %v", o.stockTLS, err)
		}
	}

	// The listener accepts connections from here on, so the harness may connect at once.
	u := *s.URL
	u.User = nil
	fmt.Println(u.String())

	eof := make(chan struct{})
	if o.exitOnStdinEOF {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			close(eof)
		}()
	}
	select {
	case got := <-sig:
		log.Printf("%v: shutting down", got)
	case <-eof:
		log.Printf("stdin closed: shutting down")
	}
	return nil
}

// setCustomValues defines one HostSystem custom field per distinct name and sets the values
// directly on the host objects. Field keys are given in sorted name order, so the same input
// yields the same keys on every start (restart tests rely on that).
func setCustomValues(values map[string]map[string]string) error {
	if len(values) == 0 {
		return nil
	}
	hosts := hostsByName()
	var names []string
	seen := map[string]bool{}
	for hostName, fields := range values {
		if hosts[hostName] == nil {
			return fmt.Errorf("custom values: no host named %q (names look like DC0_C0_H0 or DC0_H0)", hostName)
		}
		for name := range fields {
			if !seen[name] {
				seen[name] = true
				names = append(names, name)
			}
		}
	}
	sort.Strings(names)

	cfm := simulator.Map.CustomFieldsManager()
	keys := map[string]int32{}
	for _, name := range names {
		res := cfm.AddCustomFieldDef(&types.AddCustomFieldDef{Name: name, MoType: "HostSystem"})
		body := res.(*methods.AddCustomFieldDefBody)
		if body.Fault_ != nil {
			return fmt.Errorf("custom field %q: %v", name, body.Fault_.String)
		}
		keys[name] = body.Res.Returnval.Key
	}
	// Written directly rather than through SetField, which in vcsim 0.24 appends duplicates.
	for hostName, fields := range values {
		h := hosts[hostName]
		for _, name := range names {
			if value, ok := fields[name]; ok {
				v := &types.CustomFieldStringValue{CustomFieldValue: types.CustomFieldValue{Key: keys[name]}, Value: value}
				h.CustomValue = append(h.CustomValue, v)
				h.Value = append(h.Value, v)
			}
		}
	}
	return nil
}

func hostsByName() map[string]*simulator.HostSystem {
	hosts := map[string]*simulator.HostSystem{}
	for _, e := range simulator.Map.All("HostSystem") {
		h := simulator.Map.Get(e.Reference()).(*simulator.HostSystem)
		hosts[h.Name] = h
	}
	return hosts
}

// parseMethodDelay reads -method-delay: "METHOD=MS,METHOD=MS".
func parseMethodDelay(s string) (map[string]int, error) {
	if s == "" {
		return nil, nil
	}
	out := map[string]int{}
	for _, part := range strings.Split(s, ",") {
		kv := strings.SplitN(part, "=", 2)
		if len(kv) != 2 {
			return nil, fmt.Errorf("-method-delay %q: expected METHOD=MS", part)
		}
		ms, err := strconv.Atoi(kv[1])
		if err != nil || ms < 0 {
			return nil, fmt.Errorf("-method-delay %q: %q is not a number of milliseconds", part, kv[1])
		}
		out[strings.TrimSpace(kv[0])] = ms
	}
	return out, nil
}

// readJSON decodes a file strictly: an unknown key is a typo, not something to ignore.
func readJSON(path string, v interface{}) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	return nil
}
