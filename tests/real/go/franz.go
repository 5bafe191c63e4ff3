package main

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

var franzName = "franz-go-" + modVersion("github.com/twmb/franz-go")

var franzScenarios = map[string]scenarioFunc{
	"produce":        franzProduce,
	"group-classic":  func(ctx context.Context, r *run) error { return franzGroup(ctx, r, false) },
	"group-consumer": func(ctx context.Context, r *run) error { return franzGroup(ctx, r, true) },
	"txn":            franzTxn,
	"admin":          franzAdmin,
}

// modVersion is the version of a module this binary was built with.
func modVersion(path string) string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, d := range info.Deps {
			if d.Path == path {
				return d.Version
			}
		}
	}
	return "unknown"
}

func franzClient(r *run, opts ...kgo.Opt) (*kgo.Client, error) {
	base, err := r.login.franzOpts()
	if err != nil {
		return nil, err
	}
	base = append(base, kgo.SeedBrokers(r.brokers...), kgo.ClientID(r.prefix+"-"+r.scenario))
	return kgo.NewClient(append(base, opts...)...)
}

// franzCreate creates a topic (broker-default replication factor) through kadm.
func franzCreate(ctx context.Context, r *run, topic string, partitions int32) error {
	cl, err := franzClient(r)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	res, err := adm.CreateTopic(ctx, partitions, -1, nil, topic)
	if err == nil {
		err = res.Err
	}
	if err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	// CreateTopics answers before every broker learned of the topic.
	err = settle(ctx, topic, func() bool {
		md, err := adm.Metadata(ctx, topic)
		if err != nil || md.Topics[topic].Err != nil || len(md.Topics[topic].Partitions) != int(partitions) {
			return false
		}
		for _, p := range md.Topics[topic].Partitions {
			if p.Leader < 0 {
				return false
			}
		}
		return true
	})
	if err != nil {
		return err
	}
	r.emit("create_topics", true, map[string]any{"topics": []string{topic}, "partitions": partitions})
	return nil
}

func franzSend(ctx context.Context, cl *kgo.Client, topic string, vals []string) error {
	records := make([]*kgo.Record, len(vals))
	for i, v := range vals {
		records[i] = &kgo.Record{Topic: topic, Key: []byte(fmt.Sprint("k", i)), Value: []byte(v)}
	}
	return cl.ProduceSync(ctx, records...).FirstErr()
}

// franzRead polls until `want` records came (or ctx ends), then a short extra poll for duplicates.
func franzRead(ctx context.Context, cl *kgo.Client, want int, commit bool) ([]string, error) {
	var got []string
	for len(got) < want && ctx.Err() == nil {
		fetches := cl.PollFetches(ctx)
		if errs := fetches.Errors(); len(errs) > 0 && ctx.Err() == nil {
			return got, fmt.Errorf("fetch: %v", errs[0].Err)
		}
		fetches.EachRecord(func(rec *kgo.Record) { got = append(got, string(rec.Value)) })
		if commit {
			if err := cl.CommitUncommittedOffsets(ctx); err != nil {
				return got, fmt.Errorf("commit: %w", err)
			}
		}
	}
	extra, cancel := context.WithTimeout(context.Background(), 500e6)
	defer cancel()
	cl.PollFetches(extra).EachRecord(func(rec *kgo.Record) { got = append(got, string(rec.Value)) })
	return got, nil
}

func franzProduce(ctx context.Context, r *run) error {
	topic := r.topic("t")
	if err := franzCreate(ctx, r, topic, 3); err != nil {
		return err
	}
	want := values(topic, 300)
	// Idempotence is on by default; acks=all is what it needs.
	prod, err := franzClient(r, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerBatchCompression(kgo.ZstdCompression()))
	if err != nil {
		return err
	}
	defer prod.Close()
	if err := franzSend(ctx, prod, topic, want); err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	r.emit("produce", true, map[string]any{"acked": len(want)})
	cons, err := franzClient(r, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return err
	}
	defer cons.Close()
	got, err := franzRead(ctx, cons, len(want), false)
	if err != nil {
		return err
	}
	cmp := compare(want, got)
	r.emit("consume", exact(cmp), cmp)
	return nil
}

// franzGroup: one member consumes everything and commits; the committed offsets add up.
func franzGroup(ctx context.Context, r *run, serverSide bool) error {
	topic, group := r.topic("t"), r.topic("g")
	if err := franzCreate(ctx, r, topic, 6); err != nil {
		return err
	}
	want := values(topic, 120)
	prod, err := franzClient(r, kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		return err
	}
	defer prod.Close()
	if err := franzSend(ctx, prod, topic, want); err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	opts := []kgo.Opt{kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}
	if serverSide {
		opts = append(opts, kgo.Balancers(kgo.RangeBalancer()), kgo.ServerSideBalancer())
	}
	cons, err := franzClient(r, opts...)
	if err != nil {
		return err
	}
	got, err := franzRead(ctx, cons, len(want), true)
	if err != nil {
		cons.Close()
		return err
	}
	cmp := compare(want, got)
	r.emit("group_consume", exact(cmp), cmp)
	// Described while the member is still in the group: DescribeGroups for a classic group,
	// ConsumerGroupDescribe (KIP-848) for a consumer-protocol one.
	adm := kadm.NewClient(prod)
	if err := franzDescribe(ctx, r, adm, group, serverSide); err != nil {
		cons.Close()
		return err
	}
	cons.Close()
	offsets, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return fmt.Errorf("fetch offsets: %w", err)
	}
	var total int64
	offsets.Each(func(o kadm.OffsetResponse) { total += o.At })
	r.emit("committed", total == int64(len(want)), map[string]any{"total": total})
	return nil
}

func franzDescribe(ctx context.Context, r *run, adm *kadm.Client, group string, serverSide bool) error {
	var hosts []string
	if serverSide {
		described, err := adm.DescribeConsumerGroups(ctx, group)
		if err != nil {
			return fmt.Errorf("describe consumer group: %w", err)
		}
		for _, g := range described {
			for _, m := range g.Members {
				hosts = append(hosts, m.ClientHost)
			}
			r.emit("describe_group", g.Err == nil && len(g.Members) == 1, map[string]any{"state": g.State,
				"coordinator": franzAddr(g.Coordinator), "member_hosts": hosts})
		}
		return nil
	}
	described, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return fmt.Errorf("describe group: %w", err)
	}
	for _, g := range described {
		for _, m := range g.Members {
			hosts = append(hosts, m.ClientHost)
		}
		r.emit("describe_group", g.Err == nil && len(g.Members) == 1, map[string]any{"state": g.State,
			"protocol_type": g.ProtocolType, "coordinator": franzAddr(g.Coordinator), "member_hosts": hosts})
	}
	return nil
}

func franzAddr(b kadm.BrokerDetail) string {
	return fmt.Sprintf("%d@%s:%d", b.NodeID, b.Host, b.Port)
}

// franzTxn: commit, abort, commit; read_committed sees the committed values only.
func franzTxn(ctx context.Context, r *run) error {
	topic := r.topic("t")
	if err := franzCreate(ctx, r, topic, 3); err != nil {
		return err
	}
	prod, err := franzClient(r, kgo.TransactionalID(topic+"-txid"), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		return err
	}
	defer prod.Close()
	batches := []struct {
		vals   []string
		commit kgo.TransactionEndTry
	}{{values(topic+"-c1", 40), kgo.TryCommit}, {values(topic+"-ab", 20), kgo.TryAbort}, {values(topic+"-c2", 10), kgo.TryCommit}}
	var committed []string
	for _, b := range batches {
		if err := prod.BeginTransaction(); err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		if err := franzSend(ctx, prod, topic, b.vals); err != nil {
			return fmt.Errorf("produce in transaction: %w", err)
		}
		if err := prod.EndTransaction(ctx, b.commit); err != nil {
			return fmt.Errorf("end transaction: %w", err)
		}
		if b.commit == kgo.TryCommit {
			committed = append(committed, b.vals...)
		}
	}
	r.emit("transactions", true, map[string]any{"committed": len(committed), "aborted": 20})
	cons, err := franzClient(r, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return err
	}
	defer cons.Close()
	got, err := franzRead(ctx, cons, len(committed), false)
	if err != nil {
		return err
	}
	cmp := compare(committed, got)
	r.emit("read_committed", exact(cmp), cmp)
	return nil
}

func franzAdmin(ctx context.Context, r *run) error {
	cl, err := franzClient(r)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	md, err := adm.BrokerMetadata(ctx)
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	var nodes []string
	for _, b := range md.Brokers {
		nodes = append(nodes, franzAddr(b))
	}
	r.emit("describe_cluster", len(nodes) > 0, map[string]any{"nodes": sortedAddrs(nodes), "controller": md.Controller, "cluster_id": md.Cluster})
	topic := r.topic("t")
	if err := franzCreate(ctx, r, topic, 6); err != nil {
		return err
	}
	// Asked again until the broker asked knows the topic (brokers learn of it at their own pace).
	var td kadm.TopicDetail
	err = settle(ctx, topic, func() bool {
		tmd, err := adm.Metadata(ctx, topic)
		td = tmd.Topics[topic]
		return err == nil && td.Err == nil && len(td.Partitions) == 6
	})
	r.emit("describe_topics", err == nil, map[string]any{"partitions": len(td.Partitions)})
	groups, err := adm.ListGroups(ctx)
	if err != nil {
		return fmt.Errorf("list groups: %w", err)
	}
	r.emit("list_groups", true, map[string]any{"groups": groups.Groups()})
	del, err := adm.DeleteTopics(ctx, topic)
	if err == nil {
		err = errors.Join(del.Error())
	}
	r.emit("delete_topics", err == nil, map[string]any{"topic": topic, "error": fmt.Sprint(err)})
	return nil
}
