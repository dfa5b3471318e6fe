// mlpeer runs one real HashiCorp memberlist node (v0.2.2) for stapled's
// gossip interop tests. Events are printed as JSON lines on stdout; the node
// is driven through a small HTTP control server on loopback. See README.md.
package main

import (
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/hashicorp/memberlist"
)

// ---------------------------------------------------------------- output

var outMu sync.Mutex

func nowMs() int64 { return time.Now().UnixNano() / int64(time.Millisecond) }

// emit writes one JSON object as a single line on stdout. Fields are given
// as key/value pairs so that the key order stays as written.
func emit(ev string, kv ...interface{}) {
	var b strings.Builder
	b.WriteString(`{"ev":`)
	writeJSON(&b, ev)
	hasT := false
	for i := 0; i+1 < len(kv); i += 2 {
		k := kv[i].(string)
		if k == "t" {
			hasT = true
		}
		b.WriteByte(',')
		writeJSON(&b, k)
		b.WriteByte(':')
		writeJSON(&b, kv[i+1])
	}
	if !hasT {
		b.WriteString(`,"t":`)
		b.WriteString(strconv.FormatInt(nowMs(), 10))
	}
	b.WriteString("}\n")
	outMu.Lock()
	os.Stdout.WriteString(b.String())
	outMu.Unlock()
}

func writeJSON(b *strings.Builder, v interface{}) {
	enc, err := json.Marshal(v)
	if err != nil {
		enc, _ = json.Marshal(err.Error())
	}
	b.Write(enc)
}

func b64(p []byte) string { return base64.StdEncoding.EncodeToString(p) }

// ------------------------------------------------- access to node states
//
// memberlist 0.2.2 has no public API for a member's incarnation number or
// for members that are dead or have left (Members() skips them, and the
// State field of the public Node struct is never written: the real state
// lives in the unexported nodeState wrapper, which shadows it). We read
// the unexported fields by reflection, under memberlist's own lock, and
// fall back to Members() if the layout is not what we expect.

var (
	nodeStateType reflect.Type // memberlist.nodeState, nil if unknown
	nodeOffOK     bool         // nodeState embeds Node at offset 0
)

func initReflection() {
	mt := reflect.TypeOf(memberlist.Memberlist{})
	f, ok := mt.FieldByName("nodes")
	if !ok || f.Type.Kind() != reflect.Slice || f.Type.Elem().Kind() != reflect.Ptr {
		return
	}
	t := f.Type.Elem().Elem()
	if t.Kind() != reflect.Struct {
		return
	}
	nf, ok := t.FieldByName("Node")
	if !ok || nf.Type != reflect.TypeOf(memberlist.Node{}) || !nf.Anonymous {
		return
	}
	if sf, ok := t.FieldByName("State"); !ok || sf.Type != reflect.TypeOf(memberlist.StateAlive) || len(sf.Index) != 1 {
		return
	}
	if sf, ok := t.FieldByName("Incarnation"); !ok || sf.Type.Kind() != reflect.Uint32 {
		return
	}
	if lf, ok := mt.FieldByName("nodeLock"); !ok || lf.Type != reflect.TypeOf(sync.RWMutex{}) {
		return
	}
	nodeStateType = t
	nodeOffOK = nf.Offset == 0
}

func stateName(s int) string {
	switch memberlist.NodeStateType(s) {
	case memberlist.StateAlive:
		return "alive"
	case memberlist.StateSuspect:
		return "suspect"
	case memberlist.StateDead:
		return "dead"
	case memberlist.StateLeft:
		return "left"
	}
	return "unknown"
}

type memberView struct {
	Name        string `json:"name"`
	Addr        string `json:"addr"`
	Port        uint16 `json:"port"`
	State       int    `json:"state"`
	StateName   string `json:"state_name"`
	Incarnation int64  `json:"incarnation"` // -1 if unknown
	Meta        string `json:"meta"`        // base64
	Vsn         []int  `json:"vsn"`         // pmin,pmax,pcur,dmin,dmax,dcur
}

func viewOf(n *memberlist.Node, state int, inc int64) memberView {
	return memberView{
		Name: n.Name, Addr: n.Addr.String(), Port: n.Port,
		State: state, StateName: stateName(state), Incarnation: inc,
		Meta: b64(n.Meta),
		Vsn:  []int{int(n.PMin), int(n.PMax), int(n.PCur), int(n.DMin), int(n.DMax), int(n.DCur)},
	}
}

// snapshot returns every member memberlist still knows, including dead
// and left ones that have not been reaped yet.
func snapshot(m *memberlist.Memberlist) []memberView {
	out := []memberView{}
	if nodeStateType == nil {
		for _, n := range m.Members() {
			out = append(out, viewOf(n, int(memberlist.StateAlive), -1))
		}
		return out
	}
	v := reflect.ValueOf(m).Elem()
	lf := v.FieldByName("nodeLock")
	mu := (*sync.RWMutex)(unsafe.Pointer(lf.UnsafeAddr()))
	nf := v.FieldByName("nodes")
	nodes := reflect.NewAt(nf.Type(), unsafe.Pointer(nf.UnsafeAddr())).Elem()
	mu.RLock()
	defer mu.RUnlock()
	for i := 0; i < nodes.Len(); i++ {
		ns := nodes.Index(i).Elem()
		n := ns.FieldByName("Node").Addr().Interface().(*memberlist.Node)
		st := int(ns.FieldByName("State").Int())
		inc := int64(ns.FieldByName("Incarnation").Uint())
		out = append(out, viewOf(n, st, inc))
	}
	return out
}

// stateOfEventNode reads the real state and incarnation of a node handed to
// an EventDelegate. memberlist always passes &nodeState.Node and holds its
// node lock while calling the delegate, so the enclosing struct can be read
// directly.
func stateOfEventNode(n *memberlist.Node) (string, int64) {
	if nodeStateType == nil || !nodeOffOK {
		return "", -1
	}
	ns := reflect.NewAt(nodeStateType, unsafe.Pointer(n)).Elem()
	return stateName(int(ns.FieldByName("State").Int())), int64(ns.FieldByName("Incarnation").Uint())
}

// ----------------------------------------------------------- delegates

type events struct{}

func logNode(ev string, n *memberlist.Node) {
	st, inc := stateOfEventNode(n)
	kv := []interface{}{"node", n.Name, "addr", n.Addr.String(), "port", n.Port}
	if st != "" {
		kv = append(kv, "state", st, "incarnation", inc)
	}
	emit(ev, kv...)
}

func (events) NotifyJoin(n *memberlist.Node)   { logNode("join", n) }
func (events) NotifyLeave(n *memberlist.Node)  { logNode("leave", n) }
func (events) NotifyUpdate(n *memberlist.Node) { logNode("update", n) }

type userBroadcast []byte

func (b userBroadcast) Invalidates(memberlist.Broadcast) bool { return false }
func (b userBroadcast) Message() []byte                       { return []byte(b) }
func (b userBroadcast) Finished()                             {}
func (b userBroadcast) UniqueBroadcast()                      {}

type delegate struct {
	queue  *memberlist.TransmitLimitedQueue
	state  []byte
	metaMu sync.Mutex
	meta   []byte
}

func (d *delegate) NodeMeta(limit int) []byte {
	d.metaMu.Lock()
	defer d.metaMu.Unlock()
	if len(d.meta) == 0 {
		return nil // encoded as msgpack nil, like a delegate-less node
	}
	if len(d.meta) > limit {
		return d.meta[:limit]
	}
	return d.meta
}

func (d *delegate) NotifyMsg(p []byte) {
	emit("msg", "from", "?", "data", b64(p))
}

func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.queue.GetBroadcasts(overhead, limit)
}

func (d *delegate) LocalState(join bool) []byte { return d.state }

func (d *delegate) MergeRemoteState(p []byte, join bool) {
	emit("remote_state", "data", b64(p), "join", join)
}

// ------------------------------------------------------------- flags

type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error {
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

func fatalf(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "mlpeer: "+format+"\n", a...)
	os.Exit(2)
}

func decodeKey(s string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("bad base64 key: %v", err)
	}
	if err := memberlist.ValidateKey(k); err != nil {
		return nil, err
	}
	return k, nil
}

// ------------------------------------------------------------- main

type peer struct {
	ml       *memberlist.Memberlist
	d        *delegate
	keyring  *memberlist.Keyring
	stopOnce sync.Once
	stopMu   sync.Mutex
}

// stop shuts the node down (after a graceful leave if timeout >= 0) and
// exits the process.
func (p *peer) stop(reason string, leave bool, timeout time.Duration) error {
	p.stopMu.Lock()
	defer p.stopMu.Unlock()
	var err error
	p.stopOnce.Do(func() {
		if leave {
			err = p.ml.Leave(timeout)
		}
		p.ml.Shutdown()
		kv := []interface{}{"reason", reason}
		if err != nil {
			kv = append(kv, "err", err.Error())
		}
		emit("shutdown", kv...)
	})
	return err
}

func main() {
	var (
		name        = flag.String("name", "", "node name (default mlpeer-PORT, or mlpeer-pidPID with port 0)")
		bind        = flag.String("bind", "127.0.0.1:7946", "bind address IP:PORT (port 0 picks a free one)")
		profile     = flag.String("profile", "lan", "lan, local or wan (memberlist Default*Config)")
		compress    = flag.Bool("compress", true, "EnableCompression")
		dvsn        = flag.String("delegate-vsn", "", "delegate protocol min,max,cur (e.g. 2,5,5 to look like serf)")
		state       = flag.String("state", "", "local state sent in push/pull (LocalState)")
		meta        = flag.String("meta", "", "node metadata (NodeMeta)")
		control     = flag.String("control", "", "HTTP control server address (loopback IP:PORT)")
		exitOnEOF   = flag.Bool("exit-on-eof", false, "shut down (without leave) when stdin reaches EOF")
		verifyIn    = flag.Bool("verify-incoming", true, "GossipVerifyIncoming (only matters with keys)")
		verifyOut   = flag.Bool("verify-outgoing", true, "GossipVerifyOutgoing (only matters with keys)")
		joins, keys listFlag
	)
	flag.Var(&joins, "join", "ADDR:PORT to join (repeatable or comma separated)")
	flag.Var(&keys, "key", "base64 key, 16/24/32 bytes (repeatable; first is primary)")
	flag.Parse()

	var cfg *memberlist.Config
	switch *profile {
	case "lan":
		cfg = memberlist.DefaultLANConfig()
	case "local":
		cfg = memberlist.DefaultLocalConfig()
	case "wan":
		cfg = memberlist.DefaultWANConfig()
	default:
		fatalf("unknown -profile %q", *profile)
	}

	host, portStr, err := net.SplitHostPort(*bind)
	if err != nil {
		fatalf("bad -bind: %v", err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		fatalf("bad -bind port %q", portStr)
	}
	cfg.BindAddr = host
	cfg.BindPort = port
	cfg.AdvertisePort = port
	if *name == "" && port != 0 {
		*name = fmt.Sprintf("mlpeer-%d", port)
	} else if *name == "" {
		*name = fmt.Sprintf("mlpeer-pid%d", os.Getpid())
	}
	cfg.Name = *name
	cfg.EnableCompression = *compress
	cfg.GossipVerifyIncoming = *verifyIn
	cfg.GossipVerifyOutgoing = *verifyOut
	cfg.LogOutput = os.Stderr

	if *dvsn != "" {
		parts := strings.Split(*dvsn, ",")
		if len(parts) != 3 {
			fatalf("-delegate-vsn wants min,max,cur")
		}
		var v [3]uint8
		for i, s := range parts {
			n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 8)
			if err != nil {
				fatalf("-delegate-vsn: %v", err)
			}
			v[i] = uint8(n)
		}
		cfg.DelegateProtocolMin, cfg.DelegateProtocolMax, cfg.DelegateProtocolVersion = v[0], v[1], v[2]
	}

	// Always give memberlist a keyring (empty when no -key) so that keys
	// can be installed later through the control API.
	var keyBytes [][]byte
	for _, s := range keys {
		k, err := decodeKey(s)
		if err != nil {
			fatalf("-key: %v", err)
		}
		keyBytes = append(keyBytes, k)
	}
	var primary []byte
	if len(keyBytes) > 0 {
		primary = keyBytes[0]
	}
	kr, err := memberlist.NewKeyring(keyBytes, primary)
	if err != nil {
		fatalf("keyring: %v", err)
	}
	cfg.Keyring = kr

	// The queue must exist before Create: memberlist starts gossiping (and
	// asking the delegate for broadcasts) before Create returns.
	var mlRef struct {
		sync.Mutex
		ml *memberlist.Memberlist
	}
	d := &delegate{state: []byte(*state), meta: []byte(*meta)}
	d.queue = &memberlist.TransmitLimitedQueue{
		NumNodes: func() int {
			mlRef.Lock()
			defer mlRef.Unlock()
			if mlRef.ml == nil {
				return 1
			}
			return mlRef.ml.NumMembers()
		},
		RetransmitMult: cfg.RetransmitMult,
	}
	cfg.Delegate = d
	cfg.Events = events{}

	initReflection()
	ml, err := memberlist.Create(cfg)
	if err != nil {
		emit("create_failed", "err", err.Error())
		fmt.Fprintf(os.Stderr, "mlpeer: %v\n", err)
		os.Exit(1)
	}
	mlRef.Lock()
	mlRef.ml = ml
	mlRef.Unlock()
	p := &peer{ml: ml, d: d, keyring: kr}

	if *control != "" {
		ln, err := net.Listen("tcp", *control)
		if err != nil {
			ml.Shutdown()
			fatalf("control listen: %v", err)
		}
		go http.Serve(ln, p.mux())
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		s := <-sigs
		p.stop("signal "+s.String(), false, 0)
		os.Exit(0)
	}()
	if *exitOnEOF {
		go func() {
			io.Copy(io.Discard, os.Stdin)
			p.stop("stdin eof", false, 0)
			os.Exit(0)
		}()
	}

	joined := 0
	if len(joins) > 0 {
		joined, err = ml.Join(joins)
		if err != nil {
			emit("join_failed", "err", err.Error())
		}
	}
	self := ml.LocalNode()
	emit("ready", "node", self.Name, "addr", self.Addr.String(), "port", self.Port, "joined", joined)
	select {}
}

// ------------------------------------------------------ control server

func httpErr(w http.ResponseWriter, code int, format string, a ...interface{}) {
	http.Error(w, fmt.Sprintf(format, a...), code)
}

func (p *peer) mux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/members", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(snapshot(p.ml))
	})
	mux.HandleFunc("/broadcast", p.post(func(w http.ResponseWriter, r *http.Request, body []byte) {
		p.d.queue.QueueBroadcast(userBroadcast(body))
		io.WriteString(w, "queued\n")
	}))
	mux.HandleFunc("/send", p.post(func(w http.ResponseWriter, r *http.Request, body []byte) {
		to := r.URL.Query().Get("to")
		var node *memberlist.Node
		for _, n := range p.ml.Members() {
			if n.Name == to {
				node = n
				break
			}
		}
		if node == nil {
			httpErr(w, http.StatusNotFound, "no live member %q\n", to)
			return
		}
		var err error
		if r.URL.Query().Get("reliable") == "1" {
			err = p.ml.SendReliable(node, body)
		} else {
			err = p.ml.SendBestEffort(node, body)
		}
		if err != nil {
			httpErr(w, http.StatusBadGateway, "send: %v\n", err)
			return
		}
		io.WriteString(w, "sent\n")
	}))
	mux.HandleFunc("/meta", p.post(func(w http.ResponseWriter, r *http.Request, body []byte) {
		p.d.metaMu.Lock()
		p.d.meta = append([]byte(nil), body...)
		p.d.metaMu.Unlock()
		if err := p.ml.UpdateNode(time.Second); err != nil {
			httpErr(w, http.StatusInternalServerError, "update: %v\n", err)
			return
		}
		io.WriteString(w, "updated\n")
	}))
	mux.HandleFunc("/leave", p.post(func(w http.ResponseWriter, r *http.Request, body []byte) {
		ms, _ := strconv.Atoi(r.URL.Query().Get("timeout_ms"))
		if ms <= 0 {
			ms = 1000
		}
		err := p.stop("leave", true, time.Duration(ms)*time.Millisecond)
		if err != nil {
			io.WriteString(w, "left (leave: "+err.Error()+")\n")
		} else {
			io.WriteString(w, "left\n")
		}
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		go func() {
			time.Sleep(100 * time.Millisecond)
			os.Exit(0)
		}()
	}))
	mux.HandleFunc("/keyring", func(w http.ResponseWriter, r *http.Request) {
		ks := []string{}
		for _, k := range p.keyring.GetKeys() {
			ks = append(ks, b64(k))
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]interface{}{
			"primary": b64(p.keyring.GetPrimaryKey()),
			"keys":    ks,
		})
	})
	keyOp := func(op func([]byte) error) http.HandlerFunc {
		return p.post(func(w http.ResponseWriter, r *http.Request, body []byte) {
			k, err := decodeKey(string(body))
			if err != nil {
				httpErr(w, http.StatusBadRequest, "%v\n", err)
				return
			}
			if err := op(k); err != nil {
				httpErr(w, http.StatusConflict, "%v\n", err)
				return
			}
			io.WriteString(w, "ok\n")
		})
	}
	mux.HandleFunc("/keyring/install", keyOp(p.keyring.AddKey))
	mux.HandleFunc("/keyring/use", keyOp(p.keyring.UseKey))
	mux.HandleFunc("/keyring/remove", keyOp(p.keyring.RemoveKey))
	return mux
}

func (p *peer) post(h func(http.ResponseWriter, *http.Request, []byte)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			httpErr(w, http.StatusMethodNotAllowed, "POST only\n")
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			httpErr(w, http.StatusBadRequest, "read body: %v\n", err)
			return
		}
		h(w, r, body)
	}
}
