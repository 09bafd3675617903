package webhook_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/ghbridge/ghbridge/webhook"
	"github.com/ghbridge/ghbridge/webhook/webhooktest"
)

func ExampleHandle() {
	h, err := webhook.New([]string{"It's a Secret to Everybody"},
		webhook.WithDeliveryStore(webhook.NewMemoryDeliveryStore(10_000)))
	if err != nil {
		panic(err)
	}
	webhook.Handle(h, "workflow_run.completed", func(ctx context.Context, d *webhook.Delivery, e *webhook.WorkflowRunEvent) error {
		fmt.Printf("run %d of %s: %s\n", e.WorkflowRun.ID, e.Repository.FullName, e.WorkflowRun.Conclusion)
		return nil
	})
	// In a server: mux.Handle("POST /api/github/webhook", h)

	payload := []byte(`{"action":"completed","workflow_run":{"id":42,"status":"completed","conclusion":"success"},
		"repository":{"full_name":"acme/deployer"},"installation":{"id":7}}`)
	req := webhooktest.NewRequestWithID("workflow_run", "delivery-1", payload, "It's a Secret to Everybody")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	fmt.Println("first delivery:", w.Code)

	// GitHub redelivers: acknowledged (202), not applied again.
	req = webhooktest.NewRequestWithID("workflow_run", "delivery-1", payload, "It's a Secret to Everybody")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, req)
	fmt.Println("redelivery:", w.Code)

	// A forged delivery never reaches a handler.
	req = webhooktest.NewRequestWithID("workflow_run", "delivery-2", payload, "guess")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, req)
	fmt.Println("bad signature:", w.Code)
	// Output:
	// run 42 of acme/deployer: success
	// first delivery: 200
	// redelivery: 202
	// bad signature: 401
}
