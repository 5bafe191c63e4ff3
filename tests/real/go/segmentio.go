package main

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
)

// segmentio/kafka-go: the legacy row (Produce at most v8; its JoinGroup is reported to break
// against Kafka 4.0).
var segmentioName = "segmentio-kafka-go-" + modVersion("github.com/segmentio/kafka-go")

var segmentioScenarios = map[string]scenarioFunc{
	"produce":       segmentioProduce,
	"group-classic": segmentioGroup,
	"admin":         segmentioAdmin,
}

func segmentioCreate(ctx context.Context, r *run, topic string, partitions int) error {
	client := &kafka.Client{Addr: kafka.TCP(r.brokers...), Timeout: 30 * time.Second}
	res, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{
		Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: partitions, ReplicationFactor: -1}},
	})
	if err == nil {
		err = res.Errors[topic]
	}
	if err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	// CreateTopics answers before every broker learned of the topic.
	err = settle(ctx, topic, func() bool {
		md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		if err != nil || len(md.Topics) != 1 || md.Topics[0].Error != nil || len(md.Topics[0].Partitions) != partitions {
			return false
		}
		for _, p := range md.Topics[0].Partitions {
			if p.Leader.ID < 0 || p.Leader.Host == "" {
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

func segmentioSend(ctx context.Context, r *run, topic string, vals []string) error {
	w := &kafka.Writer{Addr: kafka.TCP(r.brokers...), Topic: topic, RequiredAcks: kafka.RequireAll,
		Balancer: &kafka.RoundRobin{}, BatchTimeout: 10 * time.Millisecond}
	defer w.Close()
	msgs := make([]kafka.Message, len(vals))
	for i, v := range vals {
		msgs[i] = kafka.Message{Key: []byte(fmt.Sprint("k", i)), Value: []byte(v)}
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	return nil
}

func segmentioProduce(ctx context.Context, r *run) error {
	topic := r.topic("t")
	if err := segmentioCreate(ctx, r, topic, 3); err != nil {
		return err
	}
	want := values(topic, 300)
	if err := segmentioSend(ctx, r, topic, want); err != nil {
		return err
	}
	r.emit("produce", true, map[string]any{"acked": len(want)})
	var got []string
	for p := 0; p < 3; p++ {
		rd := kafka.NewReader(kafka.ReaderConfig{Brokers: r.brokers, Topic: topic, Partition: p, MaxWait: 200 * time.Millisecond})
		for {
			lag, err := rd.ReadLag(ctx)
			if err != nil {
				rd.Close()
				return fmt.Errorf("lag of partition %d: %w", p, err)
			}
			if lag == 0 {
				break
			}
			m, err := rd.ReadMessage(ctx)
			if err != nil {
				rd.Close()
				return fmt.Errorf("read partition %d: %w", p, err)
			}
			got = append(got, string(m.Value))
		}
		rd.Close()
	}
	cmp := compare(want, got)
	r.emit("consume", exact(cmp), cmp)
	return nil
}

func segmentioGroup(ctx context.Context, r *run) error {
	topic, group := r.topic("t"), r.topic("g")
	if err := segmentioCreate(ctx, r, topic, 6); err != nil {
		return err
	}
	want := values(topic, 120)
	if err := segmentioSend(ctx, r, topic, want); err != nil {
		return err
	}
	rd := kafka.NewReader(kafka.ReaderConfig{Brokers: r.brokers, GroupID: group, Topic: topic,
		StartOffset: kafka.FirstOffset, MaxWait: 200 * time.Millisecond})
	defer rd.Close()
	var got []string
	for len(got) < len(want) {
		m, err := rd.FetchMessage(ctx)
		if err != nil {
			return fmt.Errorf("group fetch after %d records: %w", len(got), err)
		}
		got = append(got, string(m.Value))
		if err := rd.CommitMessages(ctx, m); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
	}
	cmp := compare(want, got)
	r.emit("group_consume", exact(cmp), cmp)
	return nil
}

func segmentioAdmin(ctx context.Context, r *run) error {
	client := &kafka.Client{Addr: kafka.TCP(r.brokers...), Timeout: 30 * time.Second}
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{})
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	var nodes []string
	for _, b := range md.Brokers {
		nodes = append(nodes, fmt.Sprintf("%d@%s:%d", b.ID, b.Host, b.Port))
	}
	r.emit("describe_cluster", len(nodes) > 0, map[string]any{"nodes": sortedAddrs(nodes),
		"controller": fmt.Sprintf("%d@%s:%d", md.Controller.ID, md.Controller.Host, md.Controller.Port)})
	return nil
}
