using CrmEngine.Abstractions.Store;

namespace CrmEngine.Webhooks.Tests;

public class EventPatternTests
{
    [Theory]
    [InlineData("*", "customer", ChangeOperation.Create, true)]
    [InlineData("customer.*", "customer", ChangeOperation.Delete, true)]
    [InlineData("customer.*", "Customer", ChangeOperation.Update, true)]
    [InlineData("customer.created", "customer", ChangeOperation.Update, false)]
    [InlineData("*.deleted", "order", ChangeOperation.Delete, true)]
    [InlineData("*.deleted", "order", ChangeOperation.Create, false)]
    [InlineData("crm.sales_leads.created", "crm.sales_leads", ChangeOperation.Create, true)]
    [InlineData("order.updated", "customer", ChangeOperation.Update, false)]
    public void Patterns_match_entity_and_operation(string pattern, string entity, ChangeOperation operation, bool expected)
    {
        Assert.Null(WebhookEvents.Validate(pattern));
        Assert.Equal(expected, WebhookEvents.Matches([pattern], entity, operation));
    }

    [Theory]
    [InlineData("customer")]
    [InlineData("customer.")]
    [InlineData(".created")]
    [InlineData("customers.created")]
    [InlineData("customer.removed")]
    [InlineData("sales leads.created")]
    public void Bad_patterns_are_explained(string pattern) => Assert.NotNull(WebhookEvents.Validate(pattern));

    [Fact]
    public void Audit_paths_become_nested_json_again()
    {
        var json = RecordImages.Unflatten(
        [
            new("Id", "\"c1\""),
            new("Profile.Region", "\"North\""),
            new("Addresses[1].City", "\"Gent\""),
            new("Addresses[0].City", "\"Lyon\""),
            new("Tags", "[\"a\",\"b\"]"),
            new("Custom.vip.Text", "\"yes\""),
            new("Empty", "{}"),
        ]).ToJsonString();
        Assert.Equal("{\"Id\":\"c1\",\"Profile\":{\"Region\":\"North\"},\"Addresses\":[{\"City\":\"Lyon\"},{\"City\":\"Gent\"}],\"Tags\":[\"a\",\"b\"],\"Custom\":{\"vip\":{\"Text\":\"yes\"}},\"Empty\":{}}", json);
    }

    [Fact]
    public void The_retry_delay_doubles_up_to_the_maximum()
    {
        var options = Microsoft.Extensions.Options.Options.Create(new WebhookOptions
        {
            RetryBaseDelay = TimeSpan.FromSeconds(10),
            RetryMaxDelay = TimeSpan.FromSeconds(60),
        });
        var folder = TestEngine.NewFolder();
        using var db = new CrmEngine.Core.Storage.CrmDatabase(new CrmEngine.Core.StoreOptions { DataDirectory = folder });
        using var dispatcher = new WebhookDispatcher(new WebhookStore(db), new CrmEngine.Core.Storage.ChangeFeed(db), db, options);
        Assert.Equal([10, 20, 40, 60, 60], new[] { 1, 2, 3, 4, 5 }.Select(n => dispatcher.RetryDelay(n).TotalSeconds));
    }
}
