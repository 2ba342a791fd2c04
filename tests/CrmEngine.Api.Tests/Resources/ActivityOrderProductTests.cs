using System.Net;
using System.Text.Json;
using CrmEngine.Abstractions.Model;
using CrmEngine.Api.Tests.Support;

namespace CrmEngine.Api.Tests.Resources;

[Collection(ResourceApiCollection.Name)]
public sealed class ActivityOrderProductTests(ResourceApiFixture fixture)
{
    private ApiTestHost Host => fixture.Host;

    [Fact]
    public async Task Activities_are_created_read_patched_and_deleted_and_need_an_existing_customer()
    {
        var customer = await Api.CreateCustomerAsync(Host.Writer, $$"""{"name":"{{Api.Unique("Timeline")}}"}""");
        using var created = await Api.PostAsync(Host.Writer, "/api/activities",
            $$"""{"customerId":"{{customer.Id()}}","type":"Call","subject":"First call","dueAt":"2030-01-02T09:00:00+01:00"}""");
        var call = await Api.OkJsonAsync(created, HttpStatusCode.Created);
        Assert.Equal(("Call", "Planned"), (call.Str("type"), call.Str("status")));

        using var patched = await Api.SendAsync(Host.Writer, HttpMethod.Patch, $"/api/activities/{call.Id()}", """{"status":"Done","outcome":"Agreed"}""",
            ifMatch: created.ETag(), contentType: "application/merge-patch+json");
        var done = await Api.OkJsonAsync(patched);
        Assert.Equal(("Done", "Agreed", "First call"), (done.Str("status"), done.Str("outcome"), done.Str("subject")));

        using var byCustomer = await Host.Reader.GetAsync($"/api/activities?customerId={customer.Id()}");
        Assert.Equal([call.Id()], (await Api.OkJsonAsync(byCustomer)).GetProperty("items").EnumerateArray().Select(a => a.Id()));

        using var orphan = await Api.PostAsync(Host.Writer, "/api/activities", """{"customerId":"nobody","subject":"Lost"}""");
        Assert.Equal(["customerId"], Api.ErrorFields(await ApiTestHost.AssertProblemAsync(orphan, 422)));

        using var badType = await Api.PostAsync(Host.Writer, "/api/activities", $$"""{"customerId":"{{customer.Id()}}","subject":"x","type":"Telegram"}""");
        var problem = await ApiTestHost.AssertProblemAsync(badType, 400);
        Assert.Equal(["type"], Api.ErrorFields(problem));
        Assert.Contains("Meeting", problem.Str("detail"), StringComparison.Ordinal);

        using var deleted = await Api.SendAsync(Host.Writer, HttpMethod.Delete, $"/api/activities/{call.Id()}", ifMatch: patched.ETag());
        Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        Assert.Null(await Host.Store().Activities.GetAsync(call.Id()));
    }

    [Fact]
    public async Task The_timeline_lists_newest_first_or_by_due_time_and_pages_without_skipping()
    {
        var customer = await Api.CreateCustomerAsync(Host.Writer, $$"""{"name":"{{Api.Unique("Timeline")}}"}""");
        var id = customer.Id();
        var specs = new (string Subject, string? DueAt, string? StartAt)[]
        {
            ("undated", null, null),
            ("due-march", "2030-03-01T00:00:00+00:00", null),
            ("started-january", null, "2030-01-15T10:00:00+02:00"),
            ("due-february", "2030-02-01T00:00:00+00:00", "2029-01-01T00:00:00+00:00"),
            ("due-january-early", "2030-01-15T07:59:00+00:00", null),
        };
        var created = new List<string>();
        foreach (var (subject, dueAt, startAt) in specs)
        {
            var body = JsonSerializer.Serialize(new { customerId = id, subject, dueAt, startAt });
            using var response = await Api.PostAsync(Host.Writer, "/api/activities", body);
            created.Add((await Api.OkJsonAsync(response, HttpStatusCode.Created)).Str("subject"));
        }

        var other = await Api.CreateCustomerAsync(Host.Writer, $$"""{"name":"{{Api.Unique("Other")}}"}""");
        await Host.Store().Activities.CreateAsync(new Activity { CustomerId = other.Id(), Subject = "not mine" });

        Assert.Equal(Enumerable.Reverse(created), await ReadTimelineAsync($"/api/customers/{id}/timeline?limit=2"));
        Assert.Equal(["due-january-early", "started-january", "due-february", "due-march", "undated"],
            await ReadTimelineAsync($"/api/customers/{id}/timeline?order=due&limit=2"));

        using var badOrder = await Host.Reader.GetAsync($"/api/customers/{id}/timeline?order=oldest");
        Assert.Equal(["order"], Api.ErrorFields(await ApiTestHost.AssertProblemAsync(badOrder, 400)));
        using var unknown = await Host.Reader.GetAsync("/api/customers/nobody/timeline");
        await ApiTestHost.AssertProblemAsync(unknown, 404);
    }

    private async Task<List<string>> ReadTimelineAsync(string url)
    {
        var subjects = new List<string>();
        string? next = url;
        while (next is not null)
        {
            using var response = await Host.Reader.GetAsync(next);
            var page = await Api.OkJsonAsync(response);
            var items = page.GetProperty("items").EnumerateArray().ToList();
            Assert.InRange(items.Count, 1, 2);
            subjects.AddRange(items.Select(a => a.Str("subject")));
            next = page.GetProperty("next").GetString();
        }

        return subjects;
    }

    [Fact]
    public async Task Orders_and_products_have_crud_a_read_order_can_be_put_back_and_products_are_found_by_sku()
    {
        var sku = Api.Unique("SKU");
        using var productCreated = await Api.PostAsync(Host.Writer, "/api/products", $$"""{"sku":"{{sku}}","name":"Widget","listPrice":12.5}""");
        var product = await Api.OkJsonAsync(productCreated, HttpStatusCode.Created);

        using var bySku = await Host.Reader.GetAsync($"/api/products?sku={sku}");
        Assert.Equal([product.Id()], (await Api.OkJsonAsync(bySku)).GetProperty("items").EnumerateArray().Select(p => p.Id()));

        using var noSku = await Api.PostAsync(Host.Writer, "/api/products", """{"name":"Nameless"}""");
        Assert.Equal(["sku"], Api.ErrorFields(await ApiTestHost.AssertProblemAsync(noSku, 422)));

        var customer = await Api.CreateCustomerAsync(Host.Writer, $$"""{"name":"{{Api.Unique("Buyer")}}"}""");
        using var orderCreated = await Api.PostAsync(Host.Writer, "/api/orders",
            $$"""{"customerId":"{{customer.Id()}}","number":"SO-1","orderedAt":"2030-01-01T00:00:00+00:00","lines":[{"productId":"{{product.Id()}}","description":"Widget","quantity":4,"unitPrice":12.5}]}""");
        var order = await Api.OkJsonAsync(orderCreated, HttpStatusCode.Created);
        Assert.Equal(50m, order.GetProperty("total").GetDecimal());

        using var badLine = await Api.PostAsync(Host.Writer, "/api/orders",
            $$"""{"customerId":"{{customer.Id()}}","lines":[{"productId":"no-such-product","quantity":0,"unitPrice":1}]}""");
        var lineProblem = await ApiTestHost.AssertProblemAsync(badLine, 422);
        Assert.Contains("lines[0].quantity", Api.ErrorFields(lineProblem));
        Assert.Contains("lines[0].productId", Api.ErrorFields(lineProblem));

        // The computed total and line amounts come back in a read body; sending it back is fine.
        using var read = await Host.Reader.GetAsync($"/api/orders/{order.Id()}");
        var text = (await read.Content.ReadAsStringAsync()).Replace("\"Draft\"", "\"Confirmed\"", StringComparison.Ordinal);
        using var put = await Api.SendAsync(Host.Writer, HttpMethod.Put, $"/api/orders/{order.Id()}", text, ifMatch: read.ETag());
        Assert.Equal("Confirmed", (await Api.OkJsonAsync(put)).Str("status"));

        using var customerOrders = await Host.Reader.GetAsync($"/api/customers/{customer.Id()}/orders");
        Assert.Equal([order.Id()], (await Api.OkJsonAsync(customerOrders)).GetProperty("items").EnumerateArray().Select(o => o.Id()));

        using var deleteOrder = await Api.SendAsync(Host.Writer, HttpMethod.Delete, $"/api/orders/{order.Id()}", ifMatch: put.ETag());
        Assert.Equal(HttpStatusCode.NoContent, deleteOrder.StatusCode);
        using var deleteProduct = await Api.SendAsync(Host.Writer, HttpMethod.Delete, $"/api/products/{product.Id()}");
        Assert.Equal(HttpStatusCode.NoContent, deleteProduct.StatusCode);
        using var gone = await Host.Reader.GetAsync($"/api/products/{product.Id()}");
        await ApiTestHost.AssertProblemAsync(gone, 404);

        using var readerWrite = await Api.PostAsync(Host.Reader, "/api/products", """{"sku":"R","name":"Reader"}""");
        await ApiTestHost.AssertProblemAsync(readerWrite, 403);
    }

    [Fact]
    public async Task Consent_entries_are_appended_and_the_effective_decision_per_purpose_and_channel_is_the_newest()
    {
        var customer = await Api.CreateCustomerAsync(Host.Writer, $$"""{"name":"{{Api.Unique("Consenting")}}"}""");
        var url = $"/api/customers/{customer.Id()}/consents";
        var entries = new[]
        {
            """{"purpose":"newsletter","channel":"Email","granted":true,"source":"web form","at":"2020-01-01T00:00:00+00:00"}""",
            """{"purpose":"newsletter","channel":"Sms","granted":true,"source":"web form","at":"2020-01-02T00:00:00+00:00"}""",
            """{"purpose":"newsletter","channel":"Any","granted":false,"source":"phone call","at":"2020-02-01T00:00:00+00:00"}""",
            """{"purpose":"newsletter","channel":"Email","granted":true,"source":"unsubscribe undone","at":"2020-03-01T00:00:00+00:00"}""",
            """{"purpose":"offers","channel":"Post","granted":true,"source":"contract"}""",
        };
        foreach (var entry in entries)
        {
            using var response = await Api.PostAsync(Host.Writer, url, entry);
            await Api.OkJsonAsync(response, HttpStatusCode.Created);
        }

        using var ledgerResponse = await Host.Reader.GetAsync(url);
        var ledger = await Api.OkJsonAsync(ledgerResponse);
        Assert.Equal(5, ledger.GetProperty("entries").GetArrayLength());
        Assert.Equal(["web form", "web form", "phone call", "unsubscribe undone", "contract"],
            ledger.GetProperty("entries").EnumerateArray().Select(e => e.Str("source")));
        var effective = ledger.GetProperty("effective").EnumerateArray()
            .ToDictionary(e => e.Str("purpose") + "/" + e.Str("channel"), e => e.GetProperty("granted").GetBoolean());
        Assert.Equal(new Dictionary<string, bool>
        {
            ["newsletter/Email"] = true, // re-granted after the blanket withdrawal
            ["newsletter/Sms"] = false, // the later "Any" withdrawal speaks for SMS too
            ["newsletter/Any"] = false,
            ["offers/Post"] = true,
        }, effective);

        // Paged in the query: two entries a page, every entry once in recording order, the decisions in force on every page.
        var sources = new List<string?>();
        var next = url + "?limit=2";
        for (var pages = 0; next is not null; pages++)
        {
            Assert.True(pages < 5, "the pages do not end");
            using var pageResponse = await Host.Reader.GetAsync(next);
            var page = await Api.OkJsonAsync(pageResponse);
            Assert.True(page.GetProperty("entries").GetArrayLength() <= 2);
            sources.AddRange(page.GetProperty("entries").EnumerateArray().Select(e => e.Str("source")));
            Assert.Equal(4, page.GetProperty("effective").GetArrayLength());
            next = page.GetProperty("next").ValueKind == JsonValueKind.Null ? null : page.GetProperty("next").GetString();
        }

        Assert.Equal(["web form", "web form", "phone call", "unsubscribe undone", "contract"], sources);

        using var noGranted = await Api.PostAsync(Host.Writer, url, """{"purpose":"newsletter","channel":"Email","source":"form"}""");
        Assert.Equal(["granted"], Api.ErrorFields(await ApiTestHost.AssertProblemAsync(noGranted, 422)));
        using var noSource = await Api.PostAsync(Host.Writer, url, """{"purpose":"newsletter","granted":true}""");
        Assert.Equal(["source"], Api.ErrorFields(await ApiTestHost.AssertProblemAsync(noSource, 422)));
        using var otherCustomer = await Api.PostAsync(Host.Writer, url, """{"customerId":"someone","purpose":"p","granted":true,"source":"s"}""");
        Assert.Equal(["customerId"], Api.ErrorFields(await ApiTestHost.AssertProblemAsync(otherCustomer, 422)));
        using var reader = await Api.PostAsync(Host.Reader, url, """{"purpose":"p","granted":true,"source":"s"}""");
        await ApiTestHost.AssertProblemAsync(reader, 403);

        // Append-only: there is nothing to edit or delete.
        using var delete = await Api.SendAsync(Host.Writer, HttpMethod.Delete, url);
        Assert.Equal(HttpStatusCode.MethodNotAllowed, delete.StatusCode);
        Assert.Equal(5, (await Host.Store().Consents.FindAsync("customerId", customer.Id())).Count);
    }
}
