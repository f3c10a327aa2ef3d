package contract

import (
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
)

// Search attribute keys operators filter on in the Temporal UI and CLI.
var (
	OrderIDKey    = temporal.NewSearchAttributeKeyKeyword("CrmflowOrderID")
	CustomerIDKey = temporal.NewSearchAttributeKeyKeyword("CrmflowCustomerID")
	SKUKey        = temporal.NewSearchAttributeKeyKeyword("CrmflowSKU")
	AliasIDKey    = temporal.NewSearchAttributeKeyKeyword("CrmflowAliasID")
	ProviderKey   = temporal.NewSearchAttributeKeyKeyword("CrmflowProvider")
	ParkedKey     = temporal.NewSearchAttributeKeyBool("CrmflowParked")
	StepKey       = temporal.NewSearchAttributeKeyKeyword("CrmflowStep")
)

// SearchAttributes lists every custom search attribute with its type, for
// registering them on a namespace.
func SearchAttributes() map[string]enumspb.IndexedValueType {
	return map[string]enumspb.IndexedValueType{
		OrderIDKey.GetName():    enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		CustomerIDKey.GetName(): enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		SKUKey.GetName():        enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		AliasIDKey.GetName():    enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		ProviderKey.GetName():   enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		ParkedKey.GetName():     enumspb.INDEXED_VALUE_TYPE_BOOL,
		StepKey.GetName():       enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	}
}
