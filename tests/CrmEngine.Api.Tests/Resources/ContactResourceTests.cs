using System.Net;
using System.Text.Json;
using CrmEngine.Api.Tests.Support;

namespace CrmEngine.Api.Tests.Resources;

[Collection(ResourceApiCollection.Name)]
public sealed class ContactResourceTests(ResourceApiFixture fixture)
{
    private ApiTestHost Host => fixture.Host;

    [Fact]
    public async Task Contacts_are_added_read_replaced_patched_and_removed_as_customer_updates_with_if_match()
    {
        var customer = await Api.CreateCustomerAsync(Host.Writer, $$"""{"name":"{{Api.Unique("Org")}}"}""");
        var contacts = $"/api/customers/{customer.Id()}/contacts";

        using var noVersion = await Api.SendAsync(Host.Writer, HttpMethod.Post, contacts, """{"name":"Ann"}""");
        await ApiTestHost.AssertProblemAsync(noVersion, 428);

        var email = Api.Unique("ann") + "@example.com";
        using var added = await Api.SendAsync(Host.Writer, HttpMethod.Post, contacts, $$"""{"name":"Ann","email":"{{email}}","primary":true}""", ifMatch: "\"1\"");
        var ann = await Api.OkJsonAsync(added, HttpStatusCode.Created);
        Assert.False(string.IsNullOrEmpty(ann.Id()));
        Assert.Equal("\"2\"", added.ETag());
        Assert.Equal($"{contacts}/{ann.Id()}", added.Headers.Location?.ToString());

        using var stale = await Api.SendAsync(Host.Writer, HttpMethod.Post, contacts, """{"name":"Bob"}""", ifMatch: "\"1\"");
        Assert.Equal(2, (await ApiTestHost.AssertProblemAsync(stale, 412)).GetProperty("currentVersion").GetInt64());

        using var bobAdded = await Api.SendAsync(Host.Writer, HttpMethod.Post, contacts, """{"id":"bob","name":"Bob","primary":true}""", ifMatch: "\"2\"");
        var bob = await Api.OkJsonAsync(bobAdded, HttpStatusCode.Created);
        Assert.Equal("bob", bob.Id());

        using var duplicate = await Api.SendAsync(Host.Writer, HttpMethod.Post, contacts, """{"id":"bob","name":"Other Bob"}""", ifMatch: "\"3\"");
        await ApiTestHost.AssertProblemAsync(duplicate, 409);

        // One primary contact: marking Bob cleared Ann.
        using var list = await Host.Reader.GetAsync(contacts);
        var page = await Api.OkJsonAsync(list);
        Assert.Equal("\"3\"", list.ETag());
        var items = page.GetProperty("items").EnumerateArray().ToList();
        Assert.Equal(["Ann", "Bob"], items.Select(c => c.Str("name")));
        Assert.Equal([false, true], items.Select(c => c.GetProperty("primary").GetBoolean()));

        // Contact e-mails are searchable on the customer.
        using var search = await Host.Reader.GetAsync($"/api/customers?email={Uri.EscapeDataString(email)}");
        Assert.Equal(customer.Id(), (await Api.OkJsonAsync(search)).GetProperty("items")[0].Id());

        using var replaced = await Api.SendAsync(Host.Writer, HttpMethod.Put, $"{contacts}/bob", """{"name":"Robert","role":"Buyer"}""", ifMatch: "\"3\"");
        var robert = await Api.OkJsonAsync(replaced);
        Assert.Equal(("bob", "Robert", "Buyer", false), (robert.Id(), robert.Str("name"), robert.Str("role"), robert.GetProperty("primary").GetBoolean()));

        using var patched = await Api.SendAsync(Host.Writer, HttpMethod.Patch, $"{contacts}/bob", """{"phone":"+33 1 23 45 67 89"}""", ifMatch: "\"4\"",
            contentType: "application/merge-patch+json");
        var withPhone = await Api.OkJsonAsync(patched);
        Assert.Equal(("Robert", "Buyer"), (withPhone.Str("name"), withPhone.Str("role")));

        using var badEmail = await Api.SendAsync(Host.Writer, HttpMethod.Patch, $"{contacts}/bob", """{"email":"robert-at-example"}""", ifMatch: "\"5\"",
            contentType: "application/merge-patch+json");
        Assert.Equal(["email"], Api.ErrorFields(await ApiTestHost.AssertProblemAsync(badEmail, 422)));

        using var one = await Host.Reader.GetAsync($"{contacts}/bob");
        Assert.Equal("+33 1 23 45 67 89", (await Api.OkJsonAsync(one)).Str("phone"));
        Assert.Equal("\"5\"", one.ETag());

        using var deleteWithout = await Api.SendAsync(Host.Writer, HttpMethod.Delete, $"{contacts}/{ann.Id()}");
        await ApiTestHost.AssertProblemAsync(deleteWithout, 428);
        using var deleted = await Api.SendAsync(Host.Writer, HttpMethod.Delete, $"{contacts}/{ann.Id()}", ifMatch: "\"5\"");
        Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        Assert.Equal("\"6\"", deleted.ETag());

        using var gone = await Host.Reader.GetAsync($"{contacts}/{ann.Id()}");
        await ApiTestHost.AssertProblemAsync(gone, 404);

        var stored = await Host.Store().Customers.GetAsync(customer.Id());
        Assert.Equal(6, stored!.Version);
        Assert.Equal(["bob"], stored.Contacts.Select(c => c.Id));
        var audit = await Host.Store().Audit.ForEntityAsync("customer", customer.Id());
        Assert.Equal(6, audit.Count);
        Assert.All(audit, a => Assert.Equal("apikey:test-write", a.Actor));
    }

    [Fact]
    public async Task Contact_writes_need_the_write_scope_and_a_bad_contact_is_refused_naming_its_field()
    {
        var customer = await Api.CreateCustomerAsync(Host.Writer, $$"""{"name":"{{Api.Unique("Org")}}"}""");
        var contacts = $"/api/customers/{customer.Id()}/contacts";

        using var reader = await Api.SendAsync(Host.Reader, HttpMethod.Post, contacts, """{"name":"Ann"}""", ifMatch: "\"1\"");
        await ApiTestHost.AssertProblemAsync(reader, 403);

        using var unknownField = await Api.SendAsync(Host.Writer, HttpMethod.Post, contacts, """{"name":"Ann","shoeSize":40}""", ifMatch: "\"1\"");
        Assert.Equal(["shoeSize"], Api.ErrorFields(await ApiTestHost.AssertProblemAsync(unknownField, 400)));

        using var noName = await Api.SendAsync(Host.Writer, HttpMethod.Post, contacts, """{"name":" ","birthday":"1980-02-30"}""", ifMatch: "\"1\"");
        Assert.Equal(["birthday"], Api.ErrorFields(await ApiTestHost.AssertProblemAsync(noName, 400)));

        using var blank = await Api.SendAsync(Host.Writer, HttpMethod.Post, contacts, """{"name":" "}""", ifMatch: "\"1\"");
        Assert.Equal(["name"], Api.ErrorFields(await ApiTestHost.AssertProblemAsync(blank, 422)));

        using var badId = await Api.SendAsync(Host.Writer, HttpMethod.Post, contacts, """{"id":"a/b","name":"Ann"}""", ifMatch: "\"1\"");
        Assert.Equal(["id"], Api.ErrorFields(await ApiTestHost.AssertProblemAsync(badId, 422)));

        using var unknownCustomer = await Api.SendAsync(Host.Writer, HttpMethod.Post, "/api/customers/nobody/contacts", """{"name":"Ann"}""", ifMatch: "\"1\"");
        await ApiTestHost.AssertProblemAsync(unknownCustomer, 404);

        Assert.Equal(1, (await Host.Store().Customers.GetAsync(customer.Id()))!.Version);
    }
}
