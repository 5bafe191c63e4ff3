package main

import (
	"context"
	"fmt"
	"sync"

	"github.com/IBM/sarama"
)

var saramaName = "sarama-" + modVersion("github.com/IBM/sarama")

var saramaScenarios = map[string]scenarioFunc{
	"produce":       saramaProduce,
	"group-classic": saramaGroup,
	"admin":         saramaAdmin,
}

// saramaConfig speaks protocol 4.0 (sarama's default is 2.8), acks=all with idempotence.
func saramaConfig(r *run) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V4_0_0_0
	cfg.ClientID = r.prefix + "-" + r.scenario
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Idempotent = true
	cfg.Producer.Return.Successes = true
	cfg.Producer.Retry.Max = 10
	cfg.Net.MaxOpenRequests = 1
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	return cfg
}

func saramaCreate(ctx context.Context, r *run, admin sarama.ClusterAdmin, topic string, partitions int32) error {
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: -1}, false); err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	// CreateTopics answers before every broker learned of the topic.
	err := settle(ctx, topic, func() bool {
		md, err := admin.DescribeTopics([]string{topic})
		if err != nil || len(md) != 1 || md[0].Err != sarama.ErrNoError || len(md[0].Partitions) != int(partitions) {
			return false
		}
		for _, p := range md[0].Partitions {
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

func saramaSend(r *run, topic string, vals []string) error {
	p, err := sarama.NewSyncProducer(r.brokers, saramaConfig(r))
	if err != nil {
		return err
	}
	defer p.Close()
	msgs := make([]*sarama.ProducerMessage, len(vals))
	for i, v := range vals {
		msgs[i] = &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(fmt.Sprint("k", i)), Value: sarama.StringEncoder(v)}
	}
	if err := p.SendMessages(msgs); err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	return nil
}

func saramaProduce(ctx context.Context, r *run) error {
	cfg := saramaConfig(r)
	admin, err := sarama.NewClusterAdmin(r.brokers, cfg)
	if err != nil {
		return err
	}
	defer admin.Close()
	topic := r.topic("t")
	if err := saramaCreate(ctx, r, admin, topic, 3); err != nil {
		return err
	}
	want := values(topic, 300)
	if err := saramaSend(r, topic, want); err != nil {
		return err
	}
	r.emit("produce", true, map[string]any{"acked": len(want)})
	consumer, err := sarama.NewConsumer(r.brokers, cfg)
	if err != nil {
		return err
	}
	defer consumer.Close()
	parts, err := consumer.Partitions(topic)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	var got []string
	var wg sync.WaitGroup
	for _, p := range parts {
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			return fmt.Errorf("consume partition %d: %w", p, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer pc.Close()
			for {
				select {
				case m := <-pc.Messages():
					mu.Lock()
					got = append(got, string(m.Value))
					done := len(got) >= len(want)
					mu.Unlock()
					if done {
						return
					}
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	wg.Wait()
	cmp := compare(want, got)
	r.emit("consume", exact(cmp), cmp)
	return nil
}

// groupHandler records every message and commits after each one.
type groupHandler struct {
	mu   sync.Mutex
	got  []string
	want int
	done context.CancelFunc
}

func (h *groupHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *groupHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *groupHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for m := range claim.Messages() {
		sess.MarkMessage(m, "")
		sess.Commit()
		h.mu.Lock()
		h.got = append(h.got, string(m.Value))
		if len(h.got) >= h.want {
			h.done()
		}
		h.mu.Unlock()
	}
	return nil
}

func saramaGroup(ctx context.Context, r *run) error {
	cfg := saramaConfig(r)
	admin, err := sarama.NewClusterAdmin(r.brokers, cfg)
	if err != nil {
		return err
	}
	defer admin.Close()
	topic, group := r.topic("t"), r.topic("g")
	if err := saramaCreate(ctx, r, admin, topic, 6); err != nil {
		return err
	}
	want := values(topic, 120)
	if err := saramaSend(r, topic, want); err != nil {
		return err
	}
	cg, err := sarama.NewConsumerGroup(r.brokers, group, cfg)
	if err != nil {
		return err
	}
	consumeCtx, done := context.WithCancel(ctx)
	h := &groupHandler{want: len(want), done: done}
	for consumeCtx.Err() == nil {
		if err := cg.Consume(consumeCtx, []string{topic}, h); err != nil {
			done()
			cg.Close()
			return fmt.Errorf("group consume: %w", err)
		}
	}
	// Described while the member is still in the group.
	described, err := admin.DescribeConsumerGroups([]string{group})
	cg.Close()
	cmp := compare(want, h.got)
	r.emit("group_consume", exact(cmp), cmp)
	if err != nil {
		return fmt.Errorf("describe group: %w", err)
	}
	for _, g := range described {
		var hosts []string
		for _, m := range g.Members {
			hosts = append(hosts, m.ClientHost)
		}
		r.emit("describe_group", len(g.Members) == 1, map[string]any{"state": g.State, "member_hosts": hosts})
	}
	offsets, err := admin.ListConsumerGroupOffsets(group, nil)
	if err != nil {
		return fmt.Errorf("group offsets: %w", err)
	}
	var total int64
	for _, parts := range offsets.Blocks {
		for _, b := range parts {
			total += b.Offset
		}
	}
	r.emit("committed", total == int64(len(want)), map[string]any{"total": total})
	return nil
}

func saramaAdmin(ctx context.Context, r *run) error {
	admin, err := sarama.NewClusterAdmin(r.brokers, saramaConfig(r))
	if err != nil {
		return err
	}
	defer admin.Close()
	brokers, controller, err := admin.DescribeCluster()
	if err != nil {
		return fmt.Errorf("describe cluster: %w", err)
	}
	var nodes []string
	for _, b := range brokers {
		nodes = append(nodes, fmt.Sprintf("%d@%s", b.ID(), b.Addr()))
	}
	r.emit("describe_cluster", len(nodes) > 0, map[string]any{"nodes": sortedAddrs(nodes), "controller": controller})
	topic := r.topic("t")
	if err := saramaCreate(ctx, r, admin, topic, 6); err != nil {
		return err
	}
	// Asked again until the broker asked knows the topic (brokers learn of it at their own pace).
	err = settle(ctx, topic, func() bool {
		md, err := admin.DescribeTopics([]string{topic})
		return err == nil && len(md) == 1 && md[0].Err == sarama.ErrNoError && len(md[0].Partitions) == 6
	})
	r.emit("describe_topics", err == nil, map[string]any{"topic": topic})
	groups, err := admin.ListConsumerGroups()
	if err != nil {
		return fmt.Errorf("list groups: %w", err)
	}
	r.emit("list_groups", true, map[string]any{"groups": len(groups)})
	err = admin.DeleteTopic(topic)
	r.emit("delete_topics", err == nil, map[string]any{"topic": topic, "error": fmt.Sprint(err)})
	return nil
}
