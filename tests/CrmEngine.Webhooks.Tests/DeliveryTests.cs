using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using CrmEngine.Abstractions.Model;
using Microsoft.Extensions.DependencyInjection;

namespace CrmEngine.Webhooks.Tests;

public class DeliveryTests
{
    [Fact]
    public async Task A_delivery_is_signed_so_that_a_receiver_verifies_it_with_the_secret()
    {
        await using var receiver = await Receiver.StartAsync();
        await using var engine = await TestEngine.StartAsync();
        var (id, secret) = await engine.SubscribeAsync(receiver.Url(), "customer.*");
        Assert.StartsWith("whsec_", secret, StringComparison.Ordinal);

        var customer = await engine.Store.Customers.CreateAsync(new Customer { Name = "Zoë Ångström 张伟", Emails = ["zoe@example.com"], Tags = ["vip"] });
        await Eventually.WaitAsync(() => receiver.Delivered.Count == 1, "the create is delivered");

        var r = receiver.Delivered.Single();
        Assert.True(Receiver.Verify(secret, r.Timestamp, r.Signature, r.Body), "signature verifies with the subscription's secret");
        Assert.False(Receiver.Verify(secret + "x", r.Timestamp, r.Signature, r.Body), "a different secret must not verify");
        Assert.False(Receiver.Verify(secret, (long.Parse(r.Timestamp!) + 1).ToString(), r.Signature, r.Body), "the timestamp is signed too");
        var tampered = (byte[])r.Body.Clone();
        tampered[^2] ^= 1;
        Assert.False(Receiver.Verify(secret, r.Timestamp, r.Signature, tampered), "a changed body must not verify");
        Assert.InRange(long.Parse(r.Timestamp!), DateTimeOffset.UtcNow.AddMinutes(-5).ToUnixTimeSeconds(), DateTimeOffset.UtcNow.AddMinutes(5).ToUnixTimeSeconds());

        var body = r.Json;
        Assert.Equal("customer.created", r.Event);
        Assert.Equal(r.DeliveryId, body.GetProperty("deliveryId").GetString());
        Assert.Equal("customer.created", body.GetProperty("event").GetString());
        Assert.Equal("customer", body.GetProperty("entity").GetString());
        Assert.Equal(customer.Id, body.GetProperty("entityId").GetString());
        Assert.Equal("create", body.GetProperty("operation").GetString());
        Assert.Equal(customer.Version, body.GetProperty("version").GetInt64());
        Assert.Equal("user:tester", body.GetProperty("actor").GetString());
        Assert.True(body.GetProperty("sequence").GetInt64() > 0);
        Assert.True(DateTimeOffset.TryParse(body.GetProperty("at").GetString(), out _));
        var data = body.GetProperty("data");
        Assert.Equal(customer.Id, data.GetProperty("id").GetString());
        Assert.Equal("Zoë Ångström 张伟", data.GetProperty("name").GetString());
        Assert.Equal("zoe@example.com", data.GetProperty("emails")[0].GetString());
        Assert.Equal("vip", data.GetProperty("tags")[0].GetString());
        // The API's names (camelCase, as GET /api/customers/{id}), never the stored PascalCase ones.
        Assert.All(data.EnumerateObject(), p => Assert.True(char.IsLower(p.Name[0]), $"member '{p.Name}' is not camelCase"));
        Assert.Equal(customer.CreatedAt, data.GetProperty("createdAt").GetDateTimeOffset());
        // Non-ASCII is sent as UTF-8, not escaped, and the signature is over those bytes.
        Assert.Contains("张伟", Encoding.UTF8.GetString(r.Body), StringComparison.Ordinal);

        // The receiver answers before the dispatcher stores the outcome: wait for it.
        var history = await engine.DeliveriesAsync(id);
        for (var until = DateTime.UtcNow.AddSeconds(30);
             history.Count != 1 || history[0].GetProperty("state").GetString() != "delivered";
             history = await engine.DeliveriesAsync(id))
        {
            Assert.True(DateTime.UtcNow < until, "the delivery was not recorded as delivered in time");
            await Task.Delay(50);
        }

        var entry = Assert.Single(history);
        Assert.Equal(r.DeliveryId, entry.GetProperty("id").GetString());
        Assert.Equal("delivered", entry.GetProperty("state").GetString());
        Assert.Equal(1, entry.GetProperty("attempts").GetInt32());
        Assert.Equal(200, entry.GetProperty("lastStatusCode").GetInt32());
    }

    [Fact]
    public async Task Only_the_events_a_subscription_lists_are_delivered_to_it()
    {
        await using var receiver = await Receiver.StartAsync();
        await using var engine = await TestEngine.StartAsync();
        await engine.SubscribeAsync(receiver.Url("/created"), "customer.created");
        await engine.SubscribeAsync(receiver.Url("/products"), "product.*");
        await engine.SubscribeAsync(receiver.Url("/deletes"), "*.deleted");
        await engine.SubscribeAsync(receiver.Url("/all"), "*");

        var c = await engine.Store.Customers.CreateAsync(new Customer { Name = "Filter Ltd" });
        c.Name = "Filter Limited";
        c = await engine.Store.Customers.UpdateAsync(c);
        var p = await engine.Store.Products.CreateAsync(new Product { Sku = "SKU-1", Name = "Widget" });
        await engine.Store.Products.DeleteAsync(p.Id);
        await engine.Store.Customers.DeleteAsync(c.Id);

        await Eventually.WaitAsync(() => receiver.Delivered.Count(r => r.Path == "/all") == 5, "all five changes reach the '*' subscription",
            explain: () => string.Join(", ", receiver.Requests.Select(r => $"{r.Path} {r.Event} {r.AnsweredStatus}")) + "\n" + engine.Logs.Errors);
        await Eventually.WaitAsync(() => receiver.Delivered.Count(r => r.Path == "/deletes") == 2, "both deletes reach '*.deleted'");
        await Eventually.WaitAsync(() => receiver.Delivered.Count(r => r.Path == "/products") == 2, "product create and delete reach 'product.*'");
        await Eventually.WaitAsync(() => receiver.Delivered.Any(r => r.Path == "/created"), "the customer create reaches 'customer.created'");

        string[] EventsAt(string path) => receiver.Delivered.Where(r => r.Path == path).Select(r => r.Event!).ToArray();
        Assert.Equal(["customer.created", "customer.updated", "product.created", "product.deleted", "customer.deleted"], EventsAt("/all"));
        Assert.Equal(["customer.created"], EventsAt("/created"));
        Assert.Equal(["product.created", "product.deleted"], EventsAt("/products"));
        Assert.Equal(["product.deleted", "customer.deleted"], EventsAt("/deletes"));
    }

    [Fact]
    public async Task A_delete_is_delivered_with_null_data_and_an_update_with_the_record_as_stored_after_it()
    {
        await using var receiver = await Receiver.StartAsync();
        await using var engine = await TestEngine.StartAsync();
        await engine.SubscribeAsync(receiver.Url(), "customer.*");
        var c = await engine.Store.Customers.CreateAsync(new Customer { Name = "Gone Soon", Addresses = [new Address { City = "Lyon", PostalCode = "69001" }] });
        c.Name = "Gone Sooner";
        c = await engine.Store.Customers.UpdateAsync(c);
        await engine.Store.Customers.DeleteAsync(c.Id);

        await Eventually.WaitAsync(() => receiver.Delivered.Count == 3, "create, update and delete are delivered");
        var update = receiver.Delivered[1].Json;
        Assert.Equal("update", update.GetProperty("operation").GetString());
        Assert.Equal("Gone Sooner", update.GetProperty("data").GetProperty("name").GetString());
        Assert.Equal(2, update.GetProperty("data").GetProperty("version").GetInt64());
        Assert.Equal("Lyon", update.GetProperty("data").GetProperty("addresses")[0].GetProperty("city").GetString());

        var delete = receiver.Delivered[2].Json;
        Assert.Equal("customer.deleted", delete.GetProperty("event").GetString());
        Assert.Equal("delete", delete.GetProperty("operation").GetString());
        Assert.Equal(c.Id, delete.GetProperty("entityId").GetString());
        Assert.Equal(JsonValueKind.Null, delete.GetProperty("data").ValueKind);
    }

    [Fact]
    public async Task Failed_deliveries_are_retried_with_backoff_until_the_receiver_accepts()
    {
        await using var receiver = await Receiver.StartAsync();
        var calls = 0;
        receiver.Respond = (_, _) => Task.FromResult(Interlocked.Increment(ref calls) <= 2 ? (500, "busy") : (204, ""));
        await using var engine = await TestEngine.StartAsync(settings: new() { ["Webhooks:MaxAttempts"] = "5" });
        var (id, secret) = await engine.SubscribeAsync(receiver.Url(), "customer.created");
        await engine.Store.Customers.CreateAsync(new Customer { Name = "Retry Me" });

        await Eventually.WaitAsync(() => receiver.Delivered.Count == 1, "delivered on the third try");
        var tries = receiver.Requests.ToList();
        Assert.Equal([500, 500, 204], tries.Select(t => t.AnsweredStatus));
        Assert.Single(tries.Select(t => t.DeliveryId).Distinct());
        Assert.All(tries, t => Assert.True(Receiver.Verify(secret, t.Timestamp, t.Signature, t.Body), "every try is signed"));
        Assert.All(tries, t => Assert.Equal(tries[0].Body, t.Body));

        await Eventually.WaitAsync(async () => (await engine.DeliversAsync(id)).GetProperty("state").GetString() == "delivered", "history says delivered");
        var entry = await engine.DeliversAsync(id);
        Assert.Equal(3, entry.GetProperty("attempts").GetInt32());
        Assert.Equal(204, entry.GetProperty("lastStatusCode").GetInt32());
        Assert.Equal(JsonValueKind.Null, entry.GetProperty("nextAttemptAt").ValueKind);
    }

    [Fact]
    public async Task After_the_last_try_a_delivery_is_parked_with_its_error_and_can_be_redelivered()
    {
        await using var receiver = await Receiver.StartAsync();
        var accept = false;
        receiver.Respond = (_, _) => Task.FromResult(Volatile.Read(ref accept) ? (200, "thanks") : (503, "down for maintenance"));
        await using var engine = await TestEngine.StartAsync(settings: new() { ["Webhooks:MaxAttempts"] = "3" });
        var (id, secret) = await engine.SubscribeAsync(receiver.Url(), "customer.created");
        await engine.Store.Customers.CreateAsync(new Customer { Name = "Parked Ltd" });

        await Eventually.WaitAsync(async () => (await engine.DeliversAsync(id)).GetProperty("state").GetString() == "parked", "parked after three tries");
        var parked = await engine.DeliversAsync(id);
        Assert.Equal(3, parked.GetProperty("attempts").GetInt32());
        Assert.Equal(503, parked.GetProperty("lastStatusCode").GetInt32());
        Assert.Contains("HTTP 503", parked.GetProperty("lastError").GetString(), StringComparison.Ordinal);
        Assert.Contains("down for maintenance", parked.GetProperty("lastError").GetString(), StringComparison.Ordinal);
        Assert.Equal(3, receiver.Requests.Count);

        var health = await engine.Services.GetServices<CrmEngine.Api.IHealthContributor>().Single(h => h.Name == "webhooks").CheckAsync(default);
        Assert.Equal("degraded", health.Status);
        Assert.Equal(1L, health.Details["parked"]);

        // Redeliver once the receiver is back.
        Volatile.Write(ref accept, true);
        var deliveryId = parked.GetProperty("id").GetString();
        using (var retry = await engine.Client.PostAsync($"/api/webhooks/{id}/deliveries/{deliveryId}/retry", null))
        {
            Assert.Equal(HttpStatusCode.Accepted, retry.StatusCode);
        }

        await Eventually.WaitAsync(() => receiver.Delivered.Count == 1, "the redelivery arrives");
        Assert.Equal(deliveryId, receiver.Delivered[0].DeliveryId);
        Assert.True(Receiver.Verify(secret, receiver.Delivered[0].Timestamp, receiver.Delivered[0].Signature, receiver.Delivered[0].Body));
        await Eventually.WaitAsync(async () => (await engine.DeliversAsync(id)).GetProperty("state").GetString() == "delivered", "history says delivered");

        // Only a parked delivery can be redelivered.
        using var again = await engine.Client.PostAsync($"/api/webhooks/{id}/deliveries/{deliveryId}/retry", null);
        Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
        Assert.Contains("delivered", await again.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        using var missing = await engine.Client.PostAsync($"/api/webhooks/{id}/deliveries/{id}-0000000000000009999/retry", null);
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);

        Assert.DoesNotContain(secret, engine.Logs.All, StringComparison.Ordinal);
        Assert.Contains(engine.Logs.Lines, l => l.Contains("parked", StringComparison.Ordinal) && l.Contains("503", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Deliveries_to_one_subscription_keep_sequence_order_while_an_earlier_one_is_retried()
    {
        await using var receiver = await Receiver.StartAsync();
        long? firstSequence = null;
        var failuresLeft = 3;
        receiver.Respond = (_, body) =>
        {
            var seq = JsonDocument.Parse(body).RootElement.GetProperty("sequence").GetInt64();
            firstSequence ??= seq;
            return Task.FromResult(seq == firstSequence && Interlocked.Decrement(ref failuresLeft) >= 0 ? (500, "not yet") : (200, "ok"));
        };
        await using var engine = await TestEngine.StartAsync(settings: new() { ["Webhooks:MaxAttempts"] = "10" });
        await engine.SubscribeAsync(receiver.Url(), "customer.*");
        for (var i = 0; i < 6; i++)
        {
            await engine.Store.Customers.CreateAsync(new Customer { Name = "Ordered " + i });
        }

        await Eventually.WaitAsync(() => receiver.Delivered.Count == 6, "all six delivered");
        var all = receiver.Requests.ToList();
        Assert.Equal(9, all.Count); // three failures of the first, then one try each
        var sequences = all.Select(r => r.Sequence).ToList();
        Assert.Equal(sequences.Order().ToList(), sequences); // nothing overtook the retried first change
        Assert.Equal(6, receiver.Delivered.Select(r => r.Sequence).Distinct().Count());
    }

    [Fact]
    public async Task A_timeout_and_a_redirect_count_as_failures_and_the_redirect_is_not_followed()
    {
        await using var other = await Receiver.StartAsync();
        await using var receiver = await Receiver.StartAsync();
        receiver.Respond = async (request, _) =>
        {
            if (request.Path == "/slow")
            {
                await Task.Delay(TimeSpan.FromSeconds(30), request.HttpContext.RequestAborted);
                return (200, "too late");
            }

            return (302, other.Url("/elsewhere"));
        };
        await using var engine = await TestEngine.StartAsync(settings: new()
        {
            ["Webhooks:MaxAttempts"] = "2",
            ["Webhooks:RequestTimeout"] = "00:00:00.300",
        });
        var (slow, _) = await engine.SubscribeAsync(receiver.Url("/slow"), "customer.created");
        var (moved, _) = await engine.SubscribeAsync(receiver.Url("/moved"), "customer.created");
        await engine.Store.Customers.CreateAsync(new Customer { Name = "Edge Cases" });

        await Eventually.WaitAsync(async () => (await engine.DeliversAsync(slow)).GetProperty("state").GetString() == "parked", "the slow one is parked",
            explain: () => engine.Logs.Errors);
        await Eventually.WaitAsync(async () => (await engine.DeliversAsync(moved)).GetProperty("state").GetString() == "parked", "the redirected one is parked");
        Assert.Contains("no answer within 0.3 s", (await engine.DeliversAsync(slow)).GetProperty("lastError").GetString(), StringComparison.Ordinal);
        var redirect = await engine.DeliversAsync(moved);
        Assert.Equal(302, redirect.GetProperty("lastStatusCode").GetInt32());
        Assert.Contains("not followed", redirect.GetProperty("lastError").GetString(), StringComparison.Ordinal);
        Assert.Empty(other.Requests);
    }

    [Fact]
    public async Task A_refused_connection_is_recorded_as_the_error()
    {
        // A port that was just free: nothing listens there.
        var receiver = await Receiver.StartAsync();
        var url = receiver.Url();
        await receiver.DisposeAsync();
        await using var engine = await TestEngine.StartAsync(settings: new() { ["Webhooks:MaxAttempts"] = "2" });
        var (id, _) = await engine.SubscribeAsync(url, "customer.created");
        await engine.Store.Customers.CreateAsync(new Customer { Name = "Nobody Home" });
        await Eventually.WaitAsync(async () => (await engine.DeliversAsync(id)).GetProperty("state").GetString() == "parked", "parked");
        var entry = await engine.DeliversAsync(id);
        Assert.StartsWith("connection failed", entry.GetProperty("lastError").GetString(), StringComparison.Ordinal);
        Assert.Equal(JsonValueKind.Null, entry.GetProperty("lastStatusCode").ValueKind);
    }
}

internal static class EngineHistory
{
    /// <summary>The newest delivery of a subscription, as GET /api/webhooks/{id}/deliveries shows it.</summary>
    public static async Task<JsonElement> DeliversAsync(this TestEngine engine, string subscriptionId)
    {
        var items = await engine.DeliveriesAsync(subscriptionId);
        return items.Count == 0 ? JsonDocument.Parse("{\"state\":\"none\"}").RootElement : items[0];
    }
}
