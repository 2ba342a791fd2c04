using System.Text.Json;
using CrmEngine.Api.Tests.Support;

namespace CrmEngine.Api.Tests.Resources;

[Collection(ResourceApiCollection.Name)]
public sealed class SegmentResourceTests(ResourceApiFixture fixture)
{
    private ApiTestHost Host => fixture.Host;

    [Fact]
    public async Task Segments_list_their_members_and_a_customer_lists_its_segments_as_the_rules_engine_keeps_them()
    {
        var members = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            members.Add((await Api.CreateCustomerAsync(Host.Writer, $$"""{"name":"{{Api.Unique("Vip")}}","tags":["{{ResourceApiFixture.VipSegment}}"]}""")).Id());
        }

        var outsider = await Api.CreateCustomerAsync(Host.Writer, $$"""{"name":"{{Api.Unique("Plain")}}"}""");
        var segmentUrl = $"/api/segments/{ResourceApiFixture.VipSegment}/members";

        // Membership follows the change feed within seconds.
        var listed = new List<string>();
        await Eventually.TrueAsync(async () =>
        {
            listed = await ReadMembersAsync(segmentUrl + "?limit=2");
            return members.All(listed.Contains);
        }, "the new customers are members of the segment");
        Assert.DoesNotContain(outsider.Id(), listed);
        Assert.Equal(listed.Order(StringComparer.Ordinal), listed);

        using var page = await Host.Reader.GetAsync(segmentUrl + "?limit=500");
        var first = (await Api.OkJsonAsync(page)).GetProperty("items").EnumerateArray().First(m => m.Str("customerId") == members[0]);
        Assert.StartsWith("Vip-", first.Str("name"), StringComparison.Ordinal);
        Assert.Equal(16, first.Str("scriptHash").Length);

        using var segments = await Host.Reader.GetAsync("/api/segments");
        var vip = (await Api.OkJsonAsync(segments)).GetProperty("items").EnumerateArray().Single(s => s.Str("name") == ResourceApiFixture.VipSegment);
        Assert.Equal("Customers tagged api-vip.", vip.Str("description"));
        Assert.Equal("Active", vip.Str("status"));
        Assert.True(vip.GetProperty("members").GetInt64() >= members.Count);

        using var ofMember = await Host.Reader.GetAsync($"/api/customers/{members[1]}/segments");
        Assert.Equal([ResourceApiFixture.VipSegment], (await Api.OkJsonAsync(ofMember)).GetProperty("items").EnumerateArray().Select(s => s.Str("segment")));
        using var ofOutsider = await Host.Reader.GetAsync($"/api/customers/{outsider.Id()}/segments");
        Assert.Equal(0, (await Api.OkJsonAsync(ofOutsider)).GetProperty("items").GetArrayLength());

        // Untagging a member takes it out again.
        using var untag = await Api.SendAsync(Host.Writer, HttpMethod.Patch, $"/api/customers/{members[2]}", """{"tags":[]}""", ifMatch: "\"1\"",
            contentType: "application/merge-patch+json");
        Assert.Equal(System.Net.HttpStatusCode.OK, untag.StatusCode);
        await Eventually.TrueAsync(async () => !(await ReadMembersAsync(segmentUrl)).Contains(members[2]), "the untagged customer left the segment");

        using var unknown = await Host.Reader.GetAsync("/api/segments/no-such-segment/members");
        await ApiTestHost.AssertProblemAsync(unknown, 404);
        using var anonymous = await Host.Anonymous.GetAsync("/api/segments");
        await ApiTestHost.AssertProblemAsync(anonymous, 401);
    }

    private async Task<List<string>> ReadMembersAsync(string url)
    {
        var ids = new List<string>();
        string? next = url;
        while (next is not null)
        {
            using var response = await Host.Reader.GetAsync(next);
            var page = await Api.OkJsonAsync(response);
            ids.AddRange(page.GetProperty("items").EnumerateArray().Select(m => m.Str("customerId")));
            next = page.GetProperty("next").GetString();
        }

        return ids;
    }

    [Fact]
    public async Task The_openapi_document_lists_the_resource_endpoints_with_their_schemas()
    {
        using var response = await Host.Anonymous.GetAsync("/openapi/v1.json");
        var document = await Api.OkJsonAsync(response);
        var paths = document.GetProperty("paths");
        foreach (var path in new[]
                 {
                     "/api/customers", "/api/customers/{id}", "/api/customers/{id}/contacts/{contactId}", "/api/customers/{id}/timeline",
                     "/api/customers/{id}/orders", "/api/customers/{id}/consents", "/api/customers/{id}/segments", "/api/activities/{id}",
                     "/api/orders/{id}", "/api/products", "/api/segments", "/api/segments/{name}/members",
                 })
        {
            Assert.True(paths.TryGetProperty(path, out _), $"{path} is missing from the OpenAPI document");
        }

        var customer = paths.GetProperty("/api/customers/{id}");
        Assert.True(customer.TryGetProperty("patch", out var patch));
        Assert.True(patch.GetProperty("requestBody").GetProperty("content").TryGetProperty("application/merge-patch+json", out _));
        var schemas = document.GetProperty("components").GetProperty("schemas");
        Assert.True(schemas.TryGetProperty("Customer", out var schema), "the Customer schema is missing");
        Assert.True(schema.GetProperty("properties").TryGetProperty("emails", out _));
        Assert.Equal(JsonValueKind.Object, schemas.GetProperty("ContactPerson").ValueKind);
    }
}
